package demo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSessionStoreExpiresAndIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessionStore(2)
	s.now = func() time.Time { return now }

	require.NoError(t, s.Commit("a", []byte("1"), now.Add(time.Minute)))
	require.NoError(t, s.Commit("b", []byte("2"), now.Add(time.Hour)))
	assert.ErrorIs(t, s.Commit("c", []byte("3"), now.Add(time.Hour)), errSessionsFull, "full: no third session")
	require.NoError(t, s.Commit("a", []byte("1b"), now.Add(time.Minute)), "an existing session may still be saved")
	b, ok, err := s.Find("a")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []byte("1b"), b)

	now = now.Add(time.Minute)
	_, ok, _ = s.Find("a")
	assert.False(t, ok, "expired at its expiry")
	require.NoError(t, s.Commit("c", []byte("3"), now.Add(time.Hour)), "the expired one makes room")
	assert.Equal(t, 2, s.len())
	_, ok, _ = s.Find("missing")
	assert.False(t, ok)
	require.NoError(t, s.Delete("b"))
	require.NoError(t, s.Delete("b"), "deleting nothing is fine")
	assert.Equal(t, 1, s.len())
}

func TestStringCodecRoundTrips(t *testing.T) {
	deadline := time.Date(2026, 1, 1, 12, 0, 0, 123, time.UTC)
	b, err := stringCodec{}.Encode(deadline, map[string]any{"otp_key": "K", "phone": "+447400123456"})
	require.NoError(t, err)
	d, v, err := stringCodec{}.Decode(b)
	require.NoError(t, err)
	assert.True(t, deadline.Equal(d))
	assert.Equal(t, map[string]any{"otp_key": "K", "phone": "+447400123456"}, v)

	_, err = stringCodec{}.Encode(deadline, map[string]any{"n": 1})
	assert.ErrorIs(t, err, errNotString)
	_, _, err = stringCodec{}.Decode([]byte("not json"))
	assert.Error(t, err)
}
