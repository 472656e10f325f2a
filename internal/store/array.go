package store

import (
	"database/sql/driver"
	"sync"

	"github.com/jackc/pgx/v5/pgtype"
)

// Strings is a text[] column or query parameter. It is a named type so
// gorm passes it whole, as one array, instead of expanding it into a list;
// pgx's own array codec does the encoding and decoding.
type Strings []string

// Int64s is a bigint[] column or query parameter; see Strings.
type Int64s []int64

// arrayTypes hands out pgx type maps: a map caches its encoding plans and
// is not safe for concurrent use, so each encoding or decoding takes one
// of its own and gives it back.
var arrayTypes = sync.Pool{New: func() any { return pgtype.NewMap() }}

// Value encodes the array in PostgreSQL's text format.
func (a Strings) Value() (driver.Value, error) { return encodeArray(pgtype.TextArrayOID, []string(a)) }

// Scan decodes a text[] value.
func (a *Strings) Scan(src any) error { return scanArray(src, (*[]string)(a)) }

// Value encodes the array in PostgreSQL's text format.
func (a Int64s) Value() (driver.Value, error) { return encodeArray(pgtype.Int8ArrayOID, []int64(a)) }

// Scan decodes a bigint[] value.
func (a *Int64s) Scan(src any) error { return scanArray(src, (*[]int64)(a)) }

func encodeArray[T any](oid uint32, elems []T) (driver.Value, error) {
	if elems == nil {
		elems = []T{}
	}
	m := arrayTypes.Get().(*pgtype.Map)
	defer arrayTypes.Put(m)
	buf, err := m.Encode(oid, pgtype.TextFormatCode, elems, nil)
	if err != nil {
		return nil, err
	}
	return string(buf), nil
}

func scanArray[T any](src any, dst *[]T) error {
	if src == nil {
		*dst = nil
		return nil
	}
	m := arrayTypes.Get().(*pgtype.Map)
	defer arrayTypes.Put(m)
	var flat pgtype.FlatArray[T]
	if err := m.SQLScanner(&flat).Scan(src); err != nil {
		return err
	}
	*dst = []T(flat)
	return nil
}
