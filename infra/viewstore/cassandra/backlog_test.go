package cassandra_test

import (
	"testing"

	"herald/infra/viewstore/cassandra"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

func TestBacklogContract(t *testing.T) {
	viewstoretest.RunBacklog(t, func(t *testing.T, h projections.History) viewstoretest.BacklogViews {
		return newViews(t, cassandra.Options{History: h})
	})
}
