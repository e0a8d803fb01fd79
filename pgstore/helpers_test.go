package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/pgstore"
)

const (
	ukMobile  = "+447400123456"
	fixedCode = "123456"
	wrongCode = "654321"

	urlVar = testenv.PostgresURLEnv
)

// suite is the schema this run of the tests migrates once and drops at
// the end.
var suite struct {
	once   sync.Once
	schema string
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if suite.schema != "" {
		if err := dropSchema(os.Getenv(urlVar), suite.schema); err != nil {
			fmt.Fprintln(os.Stderr, "pgstore tests: dropping the test schema:", err)
		}
	}
	os.Exit(code)
}

func dropSchema(url, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// freshSchema returns a schema name no other run uses.
func freshSchema() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "pgstore_test_" + hex.EncodeToString(b[:])
}

// testSchema returns the schema of this run, migrated.
func testSchema(t testing.TB) string {
	t.Helper()
	url := testenv.Postgres(t)
	suite.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			suite.err = err
			return
		}
		defer pool.Close()
		schema := freshSchema()
		suite.err = pgstore.Migrate(ctx, pool, pgstore.Config{Schema: schema})
		if suite.err == nil {
			suite.schema = schema
		}
	})
	require.NoError(t, suite.err, "migrating the test schema at %s", urlVar)
	return suite.schema
}

// newPool returns a pool on OTP_POSTGRES_URL, changed by opts, closed
// after the test.
func newPool(t testing.TB, opts ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	require.NoError(t, err, urlVar)
	for _, f := range opts {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// secret returns a random KeySecret: stores with different secrets share
// no verification and no limit, not even the ScopeTotal bucket.
func secret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// newStore returns a Store on pool in the test schema, with a fresh
// KeySecret unless cfg has one, closed after the test.
func newStore(t testing.TB, pool *pgxpool.Pool, cfg pgstore.Config) *pgstore.Store {
	t.Helper()
	if cfg.Schema == "" {
		cfg.Schema = testSchema(t)
	}
	if cfg.KeySecret == nil {
		cfg.KeySecret = secret()
	}
	s, err := pgstore.New(pool, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// freshTables migrates tables of their own, under a fresh prefix in the
// test schema, for a test that counts or cleans rows, and returns the
// Config naming them.
func freshTables(t testing.TB, pool *pgxpool.Pool) pgstore.Config {
	t.Helper()
	cfg := pgstore.Config{Schema: testSchema(t), Prefix: freshPrefix()}
	require.NoError(t, pgstore.Migrate(t.Context(), pool, cfg))
	return cfg
}

// freshPrefix returns a table prefix no other test uses.
func freshPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "_"
}

// count returns the rows of the Store's table.
func count(t testing.TB, pool *pgxpool.Pool, s *pgstore.Store, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM "+s.Table(table)).Scan(&n))
	return n
}

// isolatedStore returns a new pool and a Store configured by cfg on tables
// of its own (see freshTables).
func isolatedStore(t testing.TB, cfg pgstore.Config) (*pgxpool.Pool, *pgstore.Store) {
	t.Helper()
	pool := newPool(t)
	tables := freshTables(t, pool)
	cfg.Schema, cfg.Prefix = tables.Schema, tables.Prefix
	return pool, newStore(t, pool, cfg)
}
