// Package wecom delivers notifications to WeCom (企业微信) group chats
// through group robots: one markdown message per attempt, POSTed to the
// robot's webhook (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...).
//
// WeCom answers {"errcode":0,"errmsg":"ok"} on success and a non-zero
// errcode otherwise; the package turns that into a channel.Failure and does
// nothing more (no retries, no events). It calls out only through the
// SSRF-guarded client it is given, and the robot's key never appears in a
// Reason or an error.
package wecom
