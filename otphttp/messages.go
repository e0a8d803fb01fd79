package otphttp

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
)

// MessageID names a message of a [Catalog].
type MessageID string

// The catalogue's messages. Texts may hold {n} (a number: attempts left,
// or seconds, minutes, hours in the Wait messages) and {wait} (a Wait
// message: "in 25 seconds").
const (
	MsgInvalidPhone       MessageID = "invalid_phone"       // a typo: not a valid number
	MsgLandline           MessageID = "landline"            // a fixed line, for a channel that needs a mobile
	MsgNumberType         MessageID = "number_type"         // premium-rate, toll-free, VoIP and other refused types
	MsgRegionNotAllowed   MessageID = "region_not_allowed"  // the guard refuses the number's country
	MsgDestinationBlocked MessageID = "destination_blocked" // an operator blocked the number's country or range
	MsgChallengeRequired  MessageID = "challenge_required"  // the step-up challenge
	MsgInvalidCode        MessageID = "invalid_code"        // not digits, or the wrong length
	MsgWrongCode          MessageID = "wrong_code"          // {n} attempts left
	MsgWrongCodeOne       MessageID = "wrong_code_one"      // 1 attempt left
	MsgTooManyAttempts    MessageID = "too_many_attempts"   // the last attempt was used
	MsgExpired            MessageID = "expired"             // the code has expired
	MsgNotFound           MessageID = "not_found"           // nothing pending
	MsgRateLimited        MessageID = "rate_limited"        // {wait}
	MsgResendTooSoon      MessageID = "resend_too_soon"     // {wait}
	MsgUnavailable        MessageID = "unavailable"         // provider or store unavailable
	MsgProviderRejected   MessageID = "provider_rejected"   // the vendor refused the request
	MsgInternal           MessageID = "internal"            // anything else
	MsgBadRequest         MessageID = "bad_request"         // a malformed request
	MsgTooLarge           MessageID = "too_large"           // the body is too large
	MsgUnsupportedMedia   MessageID = "unsupported_media"   // not JSON
	MsgMethodNotAllowed   MessageID = "method_not_allowed"  // a wrong HTTP method
	MsgUnauthorized       MessageID = "unauthorized"        // ErrUnauthorized
	MsgCodeSent           MessageID = "code_sent"           // a notice after Start
	MsgCodeResent         MessageID = "code_resent"         // a notice after Resend
	MsgWaitSeconds        MessageID = "wait_seconds"        // {n} seconds from now
	MsgWaitSecondsOne     MessageID = "wait_seconds_one"    // 1 second from now
	MsgWaitMinutes        MessageID = "wait_minutes"        // {n} minutes from now
	MsgWaitHours          MessageID = "wait_hours"          // {n} hours from now
	MsgWaitLater          MessageID = "wait_later"          // when the wait is unknown
)

// Catalog holds the messages for people, per language, and picks a
// language by a request's Accept-Language. [NewCatalog] has English,
// German, French and Spanish; [Catalog.Set] overrides a message or adds a
// language. A message missing in a language falls back to English. A
// Catalog is safe for concurrent use.
type Catalog struct {
	mu      sync.RWMutex
	tags    []language.Tag // tags[0] is English, the fallback
	texts   map[language.Tag]map[MessageID]string
	matcher language.Matcher
}

// NewCatalog returns a catalogue with the built-in languages: English
// (the default), German, French and Spanish.
func NewCatalog() *Catalog {
	c := &Catalog{texts: map[language.Tag]map[MessageID]string{}}
	for _, l := range builtin {
		for id, text := range l.texts {
			c.set(l.tag, id, text)
		}
	}
	return c
}

var (
	defaultOnce    sync.Once
	defaultCatalog *Catalog
)

// DefaultCatalog returns the catalogue the handlers use when
// Config.Catalog is nil: the built-in one, shared. Change a private
// [NewCatalog] instead of this one.
func DefaultCatalog() *Catalog {
	defaultOnce.Do(func() { defaultCatalog = NewCatalog() })
	return defaultCatalog
}

// Set sets the text of id in the language tag, adding the language if it
// is new.
func (c *Catalog) Set(tag language.Tag, id MessageID, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(tag, id, text)
}

func (c *Catalog) set(tag language.Tag, id MessageID, text string) {
	m, ok := c.texts[tag]
	if !ok {
		m = map[MessageID]string{}
		c.texts[tag] = m
		c.tags = append(c.tags, tag)
		c.matcher = language.NewMatcher(c.tags)
	}
	m[id] = text
}

// Languages returns the catalogue's languages, English first.
func (c *Catalog) Languages() []language.Tag {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]language.Tag(nil), c.tags...)
}

// Match returns the catalogue's language that best fits r's
// Accept-Language header; English when none fits or r is nil.
func (c *Catalog) Match(r *http.Request) language.Tag {
	if r == nil {
		return c.MatchString("")
	}
	return c.MatchString(strings.Join(r.Header.Values("Accept-Language"), ","))
}

// MatchString is Match for an Accept-Language value.
func (c *Catalog) MatchString(acceptLanguage string) language.Tag {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(acceptLanguage) > 512 { // a header no browser sends: do not parse it
		acceptLanguage = ""
	}
	prefs, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(prefs) == 0 {
		return c.tags[0]
	}
	_, i, conf := c.matcher.Match(prefs...)
	if conf == language.No {
		return c.tags[0]
	}
	return c.tags[i]
}

// Message returns the text of id in tag, or in English when tag lacks it,
// with {n} replaced by n.
func (c *Catalog) Message(tag language.Tag, id MessageID, n int) string {
	c.mu.RLock()
	text, ok := c.texts[tag][id]
	if !ok {
		text = c.texts[c.tags[0]][id]
	}
	c.mu.RUnlock()
	return strings.ReplaceAll(text, "{n}", strconv.Itoa(n))
}

// Text returns the message for f in tag: attempts left and the wait
// filled in.
func (c *Catalog) Text(tag language.Tag, f Failure) string {
	id, n := f.Message, 0
	if id == "" {
		id = MsgInternal
	}
	if id == MsgWrongCode {
		n = f.AttemptsLeft
		if n == 1 {
			id = MsgWrongCodeOne
		}
	}
	text := c.Message(tag, id, n)
	if strings.Contains(text, "{wait}") {
		text = strings.ReplaceAll(text, "{wait}", c.Wait(tag, f.RetryAfter))
	}
	return text
}

// Wait says when, in words: "in 25 seconds", "in 12 minutes", "in 2
// hours", or "later" when d is 0.
func (c *Catalog) Wait(tag language.Tag, d time.Duration) string {
	if d <= 0 {
		return c.Message(tag, MsgWaitLater, 0)
	}
	s := Seconds(d)
	id, n := MsgWaitSeconds, s
	switch {
	case s >= 2*3600:
		id, n = MsgWaitHours, (s+3599)/3600
	case s >= 120:
		id, n = MsgWaitMinutes, (s+59)/60
	}
	if n == 1 { // only seconds can be 1 here; the others start at 2
		id = MsgWaitSecondsOne
	}
	return c.Message(tag, id, n)
}

// Notice returns the text of a notice (MsgCodeSent, MsgCodeResent) in the
// language of r.
func (c *Catalog) Notice(r *http.Request, id MessageID) string {
	return c.Message(c.Match(r), id, 0)
}
