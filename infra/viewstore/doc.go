// Package viewstore is the home of the view store engines that implement
// the projections ports: sqlite (embedded default) and, later, cassandra.
// viewstoretest holds the contract suite every engine must pass. This
// package itself holds nothing but this comment: the ports are in
// herald/projections.
package viewstore
