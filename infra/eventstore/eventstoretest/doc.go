// Package eventstoretest is the contract suite every eventstore.Store engine
// must pass: the SQLite engine and the EventStoreDB engine run the very same
// tests, through Run, or through RunWithOptions for an engine whose positions
// are sparse, which relaxes only the checks that need consecutive positions.
//
// The suite never assumes a store is empty, so that engines backed by one
// shared server can run it: each test writes to streams under a prefix of its
// own and, when it reads the $all log, starts from the head it recorded before
// writing. It must not depend on a particular engine, and it must not sleep to
// wait for something: it polls with a deadline or blocks with a timeout.
package eventstoretest
