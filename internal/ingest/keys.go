package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDepth bounds the nesting of a delivery's JSON.
const maxDepth = 256

// errDuplicateKey: an object of the delivery names one key twice.
var errDuplicateKey = errors.New("duplicate key")

// duplicateKey refuses a JSON body in which one object has the same key
// twice, at any depth. A decoder keeps only one of the two values, so a
// repeated events array would silently lose the first, and a repeated
// account id would change the dedupe key. Keys are compared ignoring case,
// as encoding/json matches them to fields. It also refuses JSON nested
// deeper than maxDepth. A body that is not JSON passes: the driver's
// parser says what is wrong with it.
func duplicateKey(body []byte) error {
	if c := firstByte(body); c != '{' && c != '[' {
		return nil
	}
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// closed marks the value in the enclosing object as complete.
	closed := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // not JSON: for the parser to report
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top := &stack[n-1]
			key, ok := tok.(string)
			if !ok { // the object's closing brace
				stack = stack[:n-1]
				closed()
				continue
			}
			folded := strings.ToLower(key)
			if _, dup := top.keys[folded]; dup {
				return fmt.Errorf("%w %q in one object", errDuplicateKey, shorten(key, 64))
			}
			if top.keys == nil {
				top.keys = map[string]struct{}{}
			}
			top.keys[folded] = struct{}{}
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
			}
			stack = append(stack, frame{object: tok == json.Delim('{'), wantKey: true})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			closed()
		default:
			closed()
		}
	}
}

// firstByte returns the first non-space byte of b, or 0.
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
