package recipients

import "time"

// SetPlannerClock replaces the clock the planner ages its cache with.
func SetPlannerClock(p *Planner, now func() time.Time) { p.now = now }
