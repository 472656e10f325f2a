package emailfake_test

import (
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/email/emailfake"
)

// Servers closed at once after they start stop all the same, however the
// goroutines serving them were scheduled.
func TestServersCloseRightAfterStarting(t *testing.T) {
	for range 200 {
		srv, err := emailfake.Start("127.0.0.1:0", "127.0.0.1:0", emailfake.Username, emailfake.Password)
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- srv.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return")
		}
	}
}
