package domain_test

import (
	"strings"
	"testing"

	"herald/domain"
)

func TestMeasureSMS(t *testing.T) {
	t.Parallel()
	gsm, ucs := domain.SMSEncodingGSM7, domain.SMSEncodingUCS2
	cases := []struct {
		name string
		text string
		want domain.SMSInfo
	}{
		{"empty", "", domain.SMSInfo{Encoding: gsm, Units: 0, Segments: 0, PerSegment: 160}},
		{"short", "Code 123456", domain.SMSInfo{Encoding: gsm, Units: 11, Segments: 1, PerSegment: 160}},
		{"160 GSM chars fit one segment", strings.Repeat("a", 160), domain.SMSInfo{Encoding: gsm, Units: 160, Segments: 1, PerSegment: 160}},
		{"161 GSM chars take two", strings.Repeat("a", 161), domain.SMSInfo{Encoding: gsm, Units: 161, Segments: 2, PerSegment: 153}},
		{"306 GSM chars take two parts", strings.Repeat("a", 306), domain.SMSInfo{Encoding: gsm, Units: 306, Segments: 2, PerSegment: 153}},
		{"307 GSM chars take three", strings.Repeat("a", 307), domain.SMSInfo{Encoding: gsm, Units: 307, Segments: 3, PerSegment: 153}},
		{"the euro sign counts double", "€", domain.SMSInfo{Encoding: gsm, Units: 2, Segments: 1, PerSegment: 160}},
		{"159 chars and a euro exceed one segment", strings.Repeat("a", 159) + "€", domain.SMSInfo{Encoding: gsm, Units: 161, Segments: 2, PerSegment: 153}},
		{"158 chars and a euro fit", strings.Repeat("a", 158) + "€", domain.SMSInfo{Encoding: gsm, Units: 160, Segments: 1, PerSegment: 160}},
		{"an escape pair is not split across parts", strings.Repeat("a", 152) + "{" + strings.Repeat("a", 152), domain.SMSInfo{Encoding: gsm, Units: 306, Segments: 3, PerSegment: 153}},
		{"every extension char counts double", "^{}\\[~]|€\f", domain.SMSInfo{Encoding: gsm, Units: 20, Segments: 1, PerSegment: 160}},
		{"GSM accents and Greek stay GSM-7", "àÉñÜß ΔΩ £¥§¿¡@$\n\r", domain.SMSInfo{Encoding: gsm, Units: 18, Segments: 1, PerSegment: 160}},
		{"one emoji makes it UCS-2", "Hi 👋", domain.SMSInfo{Encoding: ucs, Units: 5, Segments: 1, PerSegment: 70}},
		{"a backtick is not GSM", "`", domain.SMSInfo{Encoding: ucs, Units: 1, Segments: 1, PerSegment: 70}},
		{"70 UCS-2 chars fit one segment", strings.Repeat("ж", 70), domain.SMSInfo{Encoding: ucs, Units: 70, Segments: 1, PerSegment: 70}},
		{"71 UCS-2 chars take two", strings.Repeat("ж", 71), domain.SMSInfo{Encoding: ucs, Units: 71, Segments: 2, PerSegment: 67}},
		{"134 UCS-2 chars take two parts", strings.Repeat("中", 134), domain.SMSInfo{Encoding: ucs, Units: 134, Segments: 2, PerSegment: 67}},
		{"135 UCS-2 chars take three", strings.Repeat("中", 135), domain.SMSInfo{Encoding: ucs, Units: 135, Segments: 3, PerSegment: 67}},
		{"a surrogate pair is not split across parts", strings.Repeat("ж", 66) + "😀" + strings.Repeat("ж", 66), domain.SMSInfo{Encoding: ucs, Units: 134, Segments: 3, PerSegment: 67}},
		{"35 emoji fill one UCS-2 segment", strings.Repeat("😀", 35), domain.SMSInfo{Encoding: ucs, Units: 70, Segments: 1, PerSegment: 70}},
	}
	for _, tc := range cases {
		if got := domain.MeasureSMS(tc.text); got != tc.want {
			t.Errorf("%s: MeasureSMS = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
