package projections

import "encoding/base64"

var base64URL = base64.RawURLEncoding
