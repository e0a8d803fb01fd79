package vendorhttp

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// failingReader returns its text, then an error.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestReadWebhookBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   io.Reader
		length int64  // the declared length; -1 unknown
		status int    // 0: read
		want   string // the body read
	}{
		{"at the cap", strings.NewReader("0123456789"), 10, 0, "0123456789"},
		{"at the cap, length unknown", strings.NewReader("0123456789"), -1, 0, "0123456789"},
		{"empty", strings.NewReader(""), 0, 0, ""},
		{"declared over the cap", strings.NewReader("0123456789"), 11, http.StatusRequestEntityTooLarge, ""},
		{"over the cap, length unknown", strings.NewReader("0123456789a"), -1, http.StatusRequestEntityTooLarge, ""},
		{"cut off", &failingReader{strings.NewReader("01234")}, -1, http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hook", tc.body)
			r.ContentLength = tc.length
			w := httptest.NewRecorder()
			body, ok := ReadWebhookBody(w, r, 10)
			if tc.status == 0 {
				assert.True(t, ok)
				assert.Equal(t, tc.want, string(body))
				assert.Equal(t, http.StatusOK, w.Code, "nothing answered")
				assert.Empty(t, w.Body.String(), "nothing answered")
				return
			}
			assert.False(t, ok)
			assert.Nil(t, body)
			assert.Equal(t, tc.status, w.Code)
		})
	}
}
