package vendorhttp

import (
	"io"
	"net/http"
)

// ReadWebhookBody reads the body of a vendor's webhook delivery, of at
// most max bytes, for a handler that verifies it before any side effect.
// A body declared or found longer is answered 413 and one that cannot be
// read 400; ok is false once it has answered.
func ReadWebhookBody(w http.ResponseWriter, r *http.Request, max int64) (body []byte, ok bool) {
	if r.ContentLength > max {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	switch {
	case int64(len(body)) > max:
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}
