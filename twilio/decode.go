package twilio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// verification is what the adapter reads of a Verification or a
// VerificationCheck resource.
type verification struct {
	SID     string `json:"sid"`
	Status  string `json:"status"`
	Valid   *bool  `json:"valid"`
	To      string `json:"to"`
	Channel string `json:"channel"`
}

// decodeVerification reads a verification: one JSON object with a
// verification SID and a status. Anything else (empty, HTML, truncated,
// null, an array) is an error.
func decodeVerification(body []byte) (verification, error) {
	var v verification
	if err := unmarshalObject(body, &v); err != nil {
		return verification{}, errors.New("twilio: malformed verification: " + err.Error())
	}
	if !verificationSIDRE.MatchString(v.SID) || v.Status == "" {
		return verification{}, errors.New("twilio: verification without a usable sid or status")
	}
	return v, nil
}

// decodeError reads Twilio's error body. It never fails: a body that is not
// one gives a zero apiError, and the HTTP status decides. The code may be a
// number or a numeric string.
func decodeError(body []byte) apiError {
	var e struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if unmarshalObject(body, &e) != nil {
		// A type mismatch elsewhere leaves what decoded: keep it.
		if len(e.Code) == 0 && e.Message == "" {
			return apiError{}
		}
	}
	out := apiError{message: e.Message}
	raw := bytes.Trim(e.Code, `"`)
	if n, err := strconv.Atoi(string(raw)); err == nil && n > 0 && n < 1_000_000 {
		out.code = n
	}
	return out
}

// unmarshalObject decodes body, which must be one JSON object, into v.
func unmarshalObject(body []byte, v any) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(b, v)
}
