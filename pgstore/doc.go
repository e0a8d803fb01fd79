// Package pgstore keeps pending verifications and abuse limits in
// PostgreSQL.
package pgstore
