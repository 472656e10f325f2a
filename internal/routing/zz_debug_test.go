package routing_test

import "testing"

func TestZZTrainMisses(t *testing.T) {
	r := councilRouter(t)
	s := evaluate(r, loadCorpus(t, "council-train.jsonl"))
	t.Log(s)
	for _, m := range s.misses {
		t.Log(m)
	}
}
