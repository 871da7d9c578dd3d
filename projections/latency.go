package projections

// SummarizeLatency turns per-bucket counts (index i counts successes at most
// LatencyBoundsMillis[i], the last index the slower ones) into a summary
// with percentiles. Inside a bucket, latencies are assumed evenly spread
// between its bounds; the unbounded bucket reports its lower bound.
func SummarizeLatency(counts []int64) LatencySummary {
	s := LatencySummary{Buckets: make([]LatencyBucket, 0, len(counts))}
	for i, c := range counts {
		le := int64(-1)
		if i < len(LatencyBoundsMillis) {
			le = LatencyBoundsMillis[i]
		}
		s.Buckets = append(s.Buckets, LatencyBucket{LeMillis: le, Count: c})
		s.Count += c
	}
	s.P50Millis = percentile(counts, s.Count, 0.50)
	s.P90Millis = percentile(counts, s.Count, 0.90)
	s.P99Millis = percentile(counts, s.Count, 0.99)
	return s
}

func percentile(counts []int64, total int64, p float64) float64 {
	if total == 0 {
		return 0
	}
	rank := p * float64(total)
	var cum float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			var lo float64
			if i > 0 {
				lo = float64(LatencyBoundsMillis[min(i, len(LatencyBoundsMillis))-1])
			}
			if i >= len(LatencyBoundsMillis) {
				return lo
			}
			hi := float64(LatencyBoundsMillis[i])
			return lo + (hi-lo)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return float64(LatencyBoundsMillis[len(LatencyBoundsMillis)-1])
}
