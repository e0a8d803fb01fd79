package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"text/template"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema, one file per version: sql/0001_init.sql is version 1. A new
// version is a new file; a file once released never changes.
//
//go:embed sql/*.sql
var sqlFiles embed.FS

// migrations are the templates of the schema's versions, in order.
var migrations = func() []*template.Template {
	names, err := fs.Glob(sqlFiles, "sql/*.sql")
	if err != nil {
		panic(err)
	}
	slices.Sort(names)
	out := make([]*template.Template, len(names))
	for i, name := range names {
		if !strings.HasPrefix(name, fmt.Sprintf("sql/%04d_", i+1)) {
			panic("pgstore: migration " + name + " is out of sequence")
		}
		b, err := sqlFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		out[i] = template.Must(template.New(name).Option("missingkey=error").Parse(string(b)))
	}
	return out
}()

// Migrate creates or brings up to date the tables and functions of the
// Store that cfg configures (it reads cfg.Schema and cfg.Prefix only):
// the schema if it is missing, a table of the versions applied
// (<prefix>schema_version), then each version not applied yet, in one
// transaction. Run it before [New], at start or from a deploy step, with a
// role that may create tables in the schema; the Store's own role needs
// only to execute the functions and to read and write the tables.
//
// It is idempotent: run again, it finds every version applied and
// changes nothing. Runs from several processes at once are safe: each
// takes a transaction-scoped advisory lock of the schema and prefix first,
// so they apply the versions one after the other, and the later ones find
// nothing to do. A schema migrated by a newer pgstore fails with
// [ErrSchemaNewer] and is left alone.
//
// A new version replaces the functions an older pgstore calls, and
// converts the rows it wrote (version 2 keeps each time as seconds and
// nanoseconds, and gives each breaker its sends in their grace, none for
// the rows it finds, whose sends count at once): once it is applied,
// instances of the older pgstore fail with [ErrNotMigrated]. Upgrade
// every instance together: stop those of the older pgstore, run Migrate,
// start the new ones.
func Migrate(ctx context.Context, pool *pgxpool.Pool, cfg Config) error {
	return migrate(ctx, pool, cfg, len(migrations))
}

// migrate is Migrate up to version to.
func migrate(ctx context.Context, pool *pgxpool.Pool, cfg Config, to int) error {
	if pool == nil {
		return fmt.Errorf("pgstore: Migrate needs a pool")
	}
	n, err := namesOf(cfg)
	if err != nil {
		return err
	}
	schema := cfg.Schema
	if schema == "" {
		schema = defaultSchema
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, 0)", n.LockM); err != nil {
			return err
		}
		// CREATE SCHEMA IF NOT EXISTS checks the privilege to create one
		// even when it exists: ask first.
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+n.schema); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+n.T+"schema_version ("+
			"version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+n.T+"schema_version").Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return ErrSchemaNewer
		}
		for v := have + 1; v <= to; v++ {
			var b strings.Builder
			if err := migrations[v-1].Execute(&b, n); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, b.String()); err != nil {
				return fmt.Errorf("version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+n.T+"schema_version (version) VALUES ($1)", v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == ErrSchemaNewer {
		return err
	}
	if err != nil {
		return &Error{Op: "migrate", Err: err}
	}
	return nil
}
