package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/testenv"
)

// TestDemoDataCommand runs `inbox demo-data` as demo.sh does: the year
// goes in, a second run says there is nothing to do, other flags are
// refused.
func TestDemoDataCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(rulesConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t), "INBOX_CONFIG": path,
		"X_API_BASE_URL": "http://127.0.0.1:1", "X_CONSUMER_SECRET": "s", "X_ACCESS_TOKEN": "t"}
	args := []string{"demo-data", "-cases", "300", "-messages", "1500", "-year-end", "2026-12-01"}
	var out, errOut bytes.Buffer
	if err := run(args, getenv(vars), nil, &out, &errOut); err != nil {
		t.Fatalf("demo-data: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "cases 300/300") || !strings.Contains(out.String(), "demo data: 300 cases,") {
		t.Errorf("demo-data printed %q", out.String())
	}
	out.Reset()
	if err := run(args, getenv(vars), nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "nothing to do") {
		t.Errorf("second run: %v, printed %q", err, out.String())
	}
	err := run([]string{"demo-data", "-cases", "200", "-messages", "1000"}, getenv(vars), nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "already holds other cases") {
		t.Errorf("a run of other flags: %v", err)
	}
	if err := run([]string{"demo-data", "-cases", "10", "-messages", "5"}, getenv(vars), nil, &out, &errOut); err == nil {
		t.Error("fewer than two messages a case accepted")
	}
}
