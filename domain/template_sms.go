package domain

import "unicode/utf16"

// SMSEncoding is the character encoding an SMS is sent in.
type SMSEncoding string

// The SMS encodings. GSM-7 packs characters of the GSM 03.38 default
// alphabet into 7 bits; any other character forces the whole message into
// UCS-2, 16 bits per code unit (characters beyond the Basic Multilingual
// Plane, such as most emoji, take two units, as carriers send UTF-16).
const (
	SMSEncodingGSM7 SMSEncoding = "GSM-7"
	SMSEncodingUCS2 SMSEncoding = "UCS-2"
)

// Segment capacities. A message that does not fit one segment is split
// into parts that each lose room to the concatenation header.
const (
	SMSGSM7Single = 160
	SMSGSM7Part   = 153
	SMSUCS2Single = 70
	SMSUCS2Part   = 67
)

// SMSInfo is how an SMS text will travel.
type SMSInfo struct {
	// Encoding is GSM-7 when every character is in the GSM default
	// alphabet or its extension table, UCS-2 otherwise.
	Encoding SMSEncoding `json:"encoding"`
	// Units is the length in the encoding: septets for GSM-7 (a character
	// of the extension table, such as "€" or "{", takes two), UTF-16 code
	// units for UCS-2.
	Units int `json:"units"`
	// Segments is how many messages the carrier bills: 1 up to the single
	// capacity, then one per part capacity. An empty text has 0.
	Segments int `json:"segments"`
	// PerSegment is the capacity of each segment for this length: 160 or
	// 153 for GSM-7, 70 or 67 for UCS-2.
	PerSegment int `json:"per_segment"`
}

// gsm7Basic is the GSM 03.38 default alphabet beyond A-Z, a-z and 0-9,
// which gsm7Cost checks by range.
const gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà"

// gsm7Extension is the extension table: each character is sent as an
// escape septet plus its own.
const gsm7Extension = "\f^{}\\[~]|€"

var gsm7Costs = func() map[rune]int {
	m := make(map[rune]int, len(gsm7Basic)+len(gsm7Extension))
	for _, r := range gsm7Basic {
		m[r] = 1
	}
	for _, r := range gsm7Extension {
		m[r] = 2
	}
	return m
}()

// gsm7Cost returns the septets r takes in GSM-7, or 0 when GSM-7 cannot
// carry it.
func gsm7Cost(r rune) int {
	if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
		return 1
	}
	return gsm7Costs[r]
}

// MeasureSMS returns the encoding, length and segment count of text.
// Segments are counted the way handsets split messages: a character that
// takes two units (an extension character in GSM-7, a surrogate pair in
// UCS-2) is never split across two segments, so a part may carry one unit
// less than its capacity.
func MeasureSMS(text string) SMSInfo {
	costs := make([]int, 0, len(text))
	encoding := SMSEncodingGSM7
	for _, r := range text {
		c := gsm7Cost(r)
		if c == 0 {
			encoding = SMSEncodingUCS2
			break
		}
		costs = append(costs, c)
	}
	single, part := SMSGSM7Single, SMSGSM7Part
	if encoding == SMSEncodingUCS2 {
		single, part = SMSUCS2Single, SMSUCS2Part
		costs = costs[:0]
		for _, r := range text {
			costs = append(costs, utf16.RuneLen(r))
		}
	}
	info := SMSInfo{Encoding: encoding, PerSegment: single}
	for _, c := range costs {
		info.Units += c
	}
	switch {
	case info.Units == 0:
		return info
	case info.Units <= single:
		info.Segments = 1
		return info
	}
	info.PerSegment = part
	used := 0
	info.Segments = 1
	for _, c := range costs {
		if used+c > part {
			info.Segments++
			used = 0
		}
		used += c
	}
	return info
}
