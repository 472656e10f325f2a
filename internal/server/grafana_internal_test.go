package server

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citizeninbox/inbox/internal/metrics"
)

// The example Grafana dashboard queries only metrics the server exports,
// so it cannot drift from them unnoticed.
func TestTheGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	dashboard, err := os.ReadFile("../../deploy/grafana/inbox-queues.json")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	describe := func(c prometheus.Collector) {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String()); m != nil {
				exported[m[1]] = true
			}
		}
	}
	m := reflect.ValueOf(*metrics.New())
	for i := range m.NumField() {
		if c, ok := m.Field(i).Interface().(prometheus.Collector); ok && m.Type().Field(i).Name != "Registry" {
			describe(c)
		}
	}
	describe(newHealthCollector(context.Background(), &Server{}))
	describe(newLiveCollector(context.Background(), &Server{}))

	used := regexp.MustCompile(`inbox_[a-z_]+`).FindAllString(string(dashboard), -1)
	if len(used) < 10 {
		t.Fatalf("the dashboard queries only %d inbox metrics", len(used))
	}
	for _, name := range used {
		if !exported[name] && !exported[strings.TrimSuffix(name, "_total")] {
			t.Errorf("the dashboard queries %s, which the server does not export", name)
		}
	}
}
