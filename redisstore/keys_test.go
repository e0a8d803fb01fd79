package redisstore_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/redisstore"
)

// keyNames returns the names of the keys holding match, from every node.
func keyNames(t *testing.T, c redis.UniversalClient, match string) []string {
	t.Helper()
	var names []string
	scan := func(ctx context.Context, n redis.Cmdable) error {
		it := n.Scan(ctx, 0, "*"+match+"*", 100).Iterator()
		for it.Next(ctx) {
			names = append(names, it.Val())
		}
		return it.Err()
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex // ForEachMaster runs fn on every master at once
		require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, n)
		}))
		return names
	}
	require.NoError(t, scan(t.Context(), c))
	return names
}

// TestKeyNamesHoldNoPersonalData: after a Start and Check with a client
// ID, a claim and an override (and on Cluster a send's mark), no key name
// holds the number, its digits, the caller's key or the client's IP; the
// scope of each limit bucket is still there to read, a claim holds no
// number, and every key expires.
func TestKeyNamesHoldNoPersonalData(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.client(t)
			cfg := redisstore.Config{Prefix: prefix()}
			store := newStore(t, c, cfg)
			v, err := otp.NewVerifier(otptest.NewProvider(otptest.ProviderConfig{Code: fixedCode}), store, otp.Config{})
			require.NoError(t, err)
			ctx := t.Context()
			const ip, user = "203.0.113.9", "alice@example.com"
			ipOpt := otp.WithClient(ip)

			// The number is the caller's key of one flow, checked; a user ID
			// that of another, left pending after a wrong guess.
			_, err = v.Start(ctx, ukMobile, ukMobile, ipOpt)
			require.NoError(t, err)
			_, err = v.Check(ctx, ukMobile, fixedCode, ipOpt)
			require.NoError(t, err)
			_, err = v.Start(ctx, user, ukMobile, ipOpt)
			require.NoError(t, err)
			_, err = v.Check(ctx, user, wrongCode, ipOpt)
			require.ErrorIs(t, err, otp.ErrWrongCode)

			// A send in flight for the user, and an override.
			_, err = store.Claim(ctx, user, otp.Claim{Token: "token", Until: time.Now().Add(time.Minute)})
			require.NoError(t, err)
			require.NoError(t, store.SetOverride(ctx, otp.Override{Target: otp.RegionTarget("JM"), Action: otp.OverrideBlock,
				Until: time.Now().Add(time.Hour)}))

			names := keyNames(t, c, cfg.Prefix)
			require.Contains(t, names, store.VerificationKey(user), "the pending verification")
			require.Contains(t, names, store.ClaimKey(user), "the claim")
			require.Contains(t, names, store.OverridesKey(), "the overrides")
			if _, sharded := c.(*redis.ClusterClient); sharded {
				pending, err := store.Get(ctx, user)
				require.NoError(t, err)
				require.Contains(t, names, store.MarkKey(user, pending.Ref.ID), "the mark of the pending verification's send")
			}
			assert.True(t, slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, ":breaker:") }),
				"breakers in %q", names)
			claim, err := c.Get(ctx, store.ClaimKey(user)).Result()
			require.NoError(t, err)
			assert.Regexp(t, `^\d+ \d+ token$`, claim, "a claim holds its Until and token, nothing else")
			for _, scope := range []otp.Scope{otp.ScopeNumber, otp.ScopeClient, otp.ScopeRegion, otp.ScopeRange, otp.ScopeTotal, otp.ScopeChecks} {
				assert.True(t, slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, ":"+string(scope)+":") }),
					"a bucket of scope %s, by name, in %q", scope, names)
			}
			assert.True(t, slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, cfg.Prefix+"r:") }),
				"receipts in %q", names)
			// Nothing lives for ever; a receipt for 30 seconds at most.
			for _, n := range names {
				ttl, err := c.PTTL(ctx, n).Result()
				require.NoError(t, err)
				assert.Positive(t, ttl, "%s expires", n)
				if strings.HasPrefix(n, cfg.Prefix+"r:") {
					assert.LessOrEqual(t, ttl, 30*time.Second, "receipt %s", n)
				}
			}
			digits := strings.TrimPrefix(ukMobile, "+")
			for _, n := range names {
				for _, raw := range []string{digits, digits[2:], digits[:len(digits)-4], ip, user, "alice"} {
					assert.NotContains(t, n, raw, "a key name")
				}
			}
		})
	}
}
