package infobip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/vendorhttp"
)

// vendorFailure is a decoder's verdict that a 2xx answer is not a success.
type vendorFailure struct {
	status    string // the vendor's status, if any
	malformed bool   // the body could not be read, so the outcome is unknown
	err       error  // detail; may wrap a sentinel such as otp.ErrInvalidPhone
}

func (f *vendorFailure) Error() string { return f.err.Error() }
func (f *vendorFailure) Unwrap() error { return f.err }

// errUndeliverable is the detail of a send Infobip accepted but did not
// deliver.
var errUndeliverable = errors.New("infobip: PIN not delivered")

func malformed(err error) error {
	return &vendorFailure{malformed: true, err: fmt.Errorf("infobip: malformed response: %w", err)}
}

// unmarshalObject decodes body, which must be one JSON object, into v.
func unmarshalObject(body []byte, v any) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(b, v)
}

type sendResponse struct {
	PinID       string `json:"pinId"`
	NCStatus    string `json:"ncStatus"`
	SMSStatus   string `json:"smsStatus"`
	CallStatus  string `json:"callStatus"`
	EmailStatus struct {
		Name string `json:"name"`
	} `json:"emailStatus"`
}

// decodeSend reads the answer to a send or resend and returns the pin ID. A lookup that found the number unreachable, a
// MESSAGE_NOT_SENT or a rejected/undeliverable status is a failure, and so
// is an answer without a usable pin ID.
func decodeSend(body []byte) (string, error) {
	var r sendResponse
	if err := unmarshalObject(body, &r); err != nil {
		return "", malformed(err)
	}
	switch r.NCStatus {
	case "NC_DESTINATION_NOT_REACHABLE", "NC_NOT_REACHABLE":
		return "", &vendorFailure{status: r.NCStatus, err: fmt.Errorf("%w: number lookup found it unreachable", otp.ErrInvalidPhone)}
	}
	// Only the channel's own status is expected, but any failed one is a
	// failure: a mixed answer is not a success.
	for _, st := range []string{r.SMSStatus, r.CallStatus, r.EmailStatus.Name} {
		if failedDelivery(st) {
			return "", &vendorFailure{status: vendorhttp.Text(st), err: errUndeliverable}
		}
	}
	if !vendorhttp.ValidID(r.PinID) {
		return "", malformed(errors.New("no usable pinId"))
	}
	return r.PinID, nil
}

// failedDelivery reports whether a delivery status says the PIN did not
// go out: MESSAGE_NOT_SENT, or one of Infobip's failure status groups.
func failedDelivery(s string) bool {
	if s == "MESSAGE_NOT_SENT" {
		return true
	}
	for _, g := range []string{"REJECTED", "UNDELIVERABLE", "EXPIRED"} {
		if strings.HasPrefix(s, g) {
			return true
		}
	}
	return false
}

type verifyResponse struct {
	PinID             string `json:"pinId"`
	Verified          *bool  `json:"verified"`
	AttemptsRemaining *int   `json:"attemptsRemaining"`
	PinError          string `json:"pinError"`
}

// decodeVerify reads the answer to verifying pinID: nil when verified, a
// core sentinel for the person's outcomes, a *vendorFailure otherwise.
// Success needs verified:true, no pinError and the same pinId back.
func decodeVerify(pinID string, body []byte) error {
	var r verifyResponse
	if err := unmarshalObject(body, &r); err != nil {
		return malformed(err)
	}
	if r.Verified == nil {
		return malformed(errors.New("no verified field"))
	}
	left := -1 // unknown
	if r.AttemptsRemaining != nil {
		left = max(*r.AttemptsRemaining, 0)
	}
	if *r.Verified {
		if r.PinError != "" || r.PinID != pinID {
			return malformed(errors.New("verified:true for another pin or with a pinError"))
		}
		return nil
	}
	switch r.PinError {
	case "TTL_EXPIRED":
		return fmt.Errorf("infobip: check: %w (TTL_EXPIRED)", otp.ErrExpired)
	case "NO_MORE_PIN_ATTEMPTS":
		return fmt.Errorf("infobip: check: %w (NO_MORE_PIN_ATTEMPTS)", otp.ErrTooManyAttempts)
	case "WRONG_PIN":
		switch left {
		case 0:
			return fmt.Errorf("infobip: check: %w (WRONG_PIN, none left)", otp.ErrTooManyAttempts)
		case -1:
			return fmt.Errorf("infobip: check: %w (WRONG_PIN)", otp.ErrWrongCode)
		}
		return fmt.Errorf("infobip: check: %w", &otp.WrongCodeError{AttemptsLeft: left})
	case "":
		if left == 0 {
			return fmt.Errorf("infobip: check: %w (no attempts remaining)", otp.ErrTooManyAttempts)
		}
		return &vendorFailure{status: "verified:false", err: errors.New("infobip: not verified, no pinError given")}
	}
	return &vendorFailure{status: vendorhttp.Text(r.PinError), err: errors.New("infobip: unknown pinError")}
}

// apiError is what either of Infobip's error envelopes says.
type apiError struct {
	status string   // messageId (legacy) or errorCode (newer APIs)
	fields []string // fields named by validationErrors or violations
}

func (e apiError) field(name string) bool { return slices.Contains(e.fields, name) }

// decodeError reads the newer envelope {"errorCode","violations"} and the
// legacy {"requestError":{"serviceException":{"messageId",
// "validationErrors"}}}. It never fails: garbage gives a zero apiError.
func decodeError(body []byte) apiError {
	var e struct {
		ErrorCode  string `json:"errorCode"`
		Violations []struct {
			Property string `json:"property"`
		} `json:"violations"`
		RequestError struct {
			ServiceException struct {
				MessageID        string                     `json:"messageId"`
				ValidationErrors map[string]json.RawMessage `json:"validationErrors"`
			} `json:"serviceException"`
		} `json:"requestError"`
	}
	// A type mismatch leaves the other fields decoded: keep what there is.
	_ = unmarshalObject(body, &e)
	var out apiError
	se := e.RequestError.ServiceException
	if e.ErrorCode != "" {
		out.status = vendorhttp.Text(e.ErrorCode)
		for _, v := range e.Violations {
			out.fields = append(out.fields, vendorhttp.Text(v.Property))
		}
	} else {
		out.status = vendorhttp.Text(se.MessageID)
	}
	for f := range se.ValidationErrors {
		out.fields = append(out.fields, vendorhttp.Text(f))
	}
	slices.Sort(out.fields)
	return out
}
