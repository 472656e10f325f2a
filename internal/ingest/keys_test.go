package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDuplicateKey(t *testing.T) {
	tests := []struct {
		name, body string
		dup        bool
	}{
		{"no duplicates", `{"a":1,"b":{"a":2,"c":[{"a":3},{"a":4}]},"c":"a"}`, false},
		{"same key in sibling objects", `[{"id":1},{"id":2}]`, false},
		{"same key at two depths", `{"id":1,"inner":{"id":2}}`, false},
		{"a value equal to a key", `{"a":"a","b":"a"}`, false},
		{"empty object and array", `{"a":{},"b":[],"c":[[]],"d":[{}]}`, false},
		{"top level", `{"a":1,"a":2}`, true},
		{"repeated array", `{"events":[1],"events":[2]}`, true},
		{"nested", `{"a":{"b":1,"c":{"d":1,"d":2}}}`, true},
		{"in an array element", `[{"x":1},{"y":1,"y":2}]`, true},
		{"after a nested object", `{"a":{"b":1},"c":2,"a":3}`, true},
		{"after an array value", `{"a":[1,{"b":2}],"a":3}`, true},
		{"case differs", `{"for_user_id":"1","FOR_USER_ID":"2"}`, true},
		{"escaped", `{"id":"1","\u0069d":"2"}`, true},
		{"not JSON", `not json`, false},
		{"truncated", `{"a":1,"a"`, true},
		{"broken before the duplicate", `{"a":1,}`, false},
		{"a form body", `a=1&a=2`, false},
		{"a bare string", `"a"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := duplicateKey([]byte(tt.body))
			if got := errors.Is(err, errDuplicateKey); got != tt.dup {
				t.Errorf("duplicateKey(%s) = %v, want duplicate %v", tt.body, err, tt.dup)
			}
		})
	}
}

func TestDuplicateKeyRefusesDeepNesting(t *testing.T) {
	body := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if err := duplicateKey([]byte(body)); err == nil || errors.Is(err, errDuplicateKey) {
		t.Errorf("%d levels: %v, want a nesting error", maxDepth+1, err)
	}
	ok := strings.Repeat(`{"a":`, maxDepth-1) + "1" + strings.Repeat("}", maxDepth-1)
	if err := duplicateKey([]byte(ok)); err != nil {
		t.Errorf("%d levels: %v", maxDepth-1, err)
	}
}

func FuzzDuplicateKey(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[{"a":2}]}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[[[{"x":{"y":[1,2,{"y":3}]}}]]]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = duplicateKey(body) // never panics
		// What encoding/json writes from a map has no duplicates, unless
		// two keys differ only by case.
		var v map[string]any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		out, _ := json.Marshal(v)
		folded := map[string]bool{}
		for k := range v {
			if folded[strings.ToLower(k)] {
				return
			}
			folded[strings.ToLower(k)] = true
		}
		if err := duplicateKey(out); err != nil && errors.Is(err, errDuplicateKey) {
			t.Fatalf("duplicateKey(%s) = %v for JSON written from a map", out, err)
		}
	})
}
