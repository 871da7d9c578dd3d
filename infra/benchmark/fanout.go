package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// GroupFanOut creates a group of members recipients (in-app only), sends to
// it, approves the batch, and returns the seconds from the approval until
// the batch reports its fan-out completed.
func GroupFanOut(ctx context.Context, baseURL, apiKey string, members int) (float64, error) {
	c := Client(2)
	defer c.CloseIdleConnections()
	do := func(method, path, contentType string, body []byte) (int, map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, baseURL+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m, nil
	}
	group := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if code, m, err := do("POST", "/v1/groups", "application/json", []byte(`{"id":"`+group+`","name":"Bench"}`)); err != nil || code/100 != 2 {
		return 0, fmt.Errorf("create group: %d %v %v", code, m, err)
	}
	var csv bytes.Buffer
	for i := range members {
		fmt.Fprintf(&csv, "member-%07d\n", i)
	}
	if code, m, err := do("POST", "/v1/groups/"+group+"/members/import", "text/csv", csv.Bytes()); err != nil || code/100 != 2 {
		return 0, fmt.Errorf("import members: %d %v %v", code, m, err)
	}
	code, m, err := do("POST", "/v1/groups/"+group+"/send", "application/json",
		[]byte(`{"channels":["inapp"],"content":{"subject":"Bench","body":"Fan-out"}}`))
	if err != nil || code/100 != 2 {
		return 0, fmt.Errorf("group send: %d %v %v", code, m, err)
	}
	batch, _ := m["id"].(string)
	start := time.Now()
	if m["status"] == "awaiting_approval" {
		if code, m, err := do("POST", "/v1/batches/"+batch+"/approve", "application/json", []byte(`{"reason":"bench"}`)); err != nil || code/100 != 2 {
			return 0, fmt.Errorf("approve: %d %v %v", code, m, err)
		}
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		code, m, err := do("GET", "/v1/batches/"+batch, "", nil)
		if err != nil {
			return 0, err
		}
		if code == http.StatusOK && m["status"] == "completed" {
			return time.Since(start).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("fan-out not completed after 10 minutes: %v", m)
		}
		time.Sleep(20 * time.Millisecond) // polling the batch's status
	}
}
