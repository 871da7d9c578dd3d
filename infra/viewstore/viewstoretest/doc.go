// Package viewstoretest is the contract suite every view store engine must
// pass (Run), plus the scenario of domain events it and the runner and read
// API tests share. It applies events through projections.Store directly, so
// it needs no event log.
package viewstoretest
