package pgstore_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
	"github.com/otpkit/otp/pgstore"
)

// TestQueryExecModes: the Store works whatever the pool's
// DefaultQueryExecMode, as a connection pooler in transaction mode may
// need one that prepares nothing.
func TestQueryExecModes(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeCacheDescribe} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := newPool(t, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			otptest.TestLimitingStore(t, func() otp.LimitingStore { return newStore(t, pool, pgstore.Config{}) })
		})
	}
}
