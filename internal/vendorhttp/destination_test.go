package vendorhttp

import (
	"strings"
	"testing"
)

func TestDestinationChecks(t *testing.T) {
	for _, c := range []struct {
		to     string
		digits string // "" when refused
	}{
		{"+447400123456", "447400123456"},
		{"+6837012", "6837012"},                 // Niue: the shortest numbers there are
		{"+123456789012345", "123456789012345"}, // 15 digits
		{"+1234567890123456", ""},               // 16
		{"+683701", ""},                         // 6
		{"447400123456", ""},
		{"+047400123456", ""},
		{"+44 7400 123456", ""},
		{"+44740012345x", ""},
		{"", ""},
	} {
		digits, ok := E164Digits(c.to)
		if digits != c.digits || ok != (c.digits != "") {
			t.Errorf("E164Digits(%q) = %q, %v", c.to, digits, ok)
		}
	}
	for _, c := range []struct {
		s  string
		ok bool
	}{
		{"a@example.com", true},
		{"first.last+tag@example.co.uk", true},
		{"@example.com", false},
		{"a@", false},
		{"a b@example.com", false},
		{"Ann <a@example.com>", false},
		{"a@example.com,b@example.com", false},
		{"a\x7f@example.com", false},
		{"a@example.com\n", false},
		{strings.Repeat("a", 250) + "@x.io", false},
		{strings.Repeat("a", 249) + "@x.io", true},
	} {
		if Email(c.s) != c.ok {
			t.Errorf("Email(%q) = %v", c.s, !c.ok)
		}
	}
	if !Alnum("Ab09") || Alnum("a-b") || Alnum("é") {
		t.Error("Alnum")
	}
	for s, ok := range map[string]bool{"1234": true, "12345678aB": true, "123": false, "12345678901": false,
		"12 34": false, "１２３４": false, "": false} {
		if Code(s) != ok {
			t.Errorf("Code(%q) = %v", s, !ok)
		}
	}
}
