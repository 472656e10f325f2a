package store

import (
	"database/sql/driver"

	"github.com/jackc/pgx/v5/pgtype"
)

// Strings is a text[] column or query parameter. It is a named type so
// gorm passes it whole, as one array, instead of expanding it into a list;
// pgx's own array codec does the encoding and decoding.
type Strings []string

// Int64s is a bigint[] column or query parameter; see Strings.
type Int64s []int64

var arrayTypes = pgtype.NewMap()

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
	buf, err := arrayTypes.Encode(oid, pgtype.TextFormatCode, elems, nil)
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
	var flat pgtype.FlatArray[T]
	if err := arrayTypes.SQLScanner(&flat).Scan(src); err != nil {
		return err
	}
	*dst = []T(flat)
	return nil
}
