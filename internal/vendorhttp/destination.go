package vendorhttp

import "strings"

// The adapters check what they are given before it goes on the wire, for a
// caller that uses a Provider without the Verifier; these are their one
// set of checks.

// E164Digits returns the digits of to, an E.164 number ("+447..." ->
// "447..."): "+" and 7 to 15 digits, the first not 0.
func E164Digits(to string) (string, bool) {
	if len(to) < 8 || len(to) > 16 || to[0] != '+' || to[1] == '0' {
		return "", false
	}
	for i := 1; i < len(to); i++ {
		if to[i] < '0' || to[i] > '9' {
			return "", false
		}
	}
	return to[1:], true
}

// Email reports whether s is a plausible bare email address: something on
// each side of its last "@", at most 254 bytes, and no space, control
// character, angle bracket or comma (a display name or a list).
func Email(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 254 &&
		!strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == ',' })
}

// Alnum reports whether s is ASCII letters and digits only.
func Alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// Code reports whether s is a code the vendors take, to check or to send
// as a custom code: 4 to 10 ASCII letters or digits.
func Code(s string) bool { return len(s) >= 4 && len(s) <= 10 && Alnum(s) }
