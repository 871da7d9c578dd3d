package cassandra_test

import (
	"testing"

	"herald/infra/viewstore/cassandra"
	"herald/infra/viewstore/viewstoretest"
)

func TestBacklogContract(t *testing.T) {
	viewstoretest.RunBacklog(t, func(t *testing.T) viewstoretest.BacklogViews {
		return newViews(t, cassandra.Options{})
	})
}
