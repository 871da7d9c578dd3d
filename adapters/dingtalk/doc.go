// Package dingtalk delivers notifications to DingTalk (钉钉) group chats
// through custom robots: one markdown message per attempt, POSTed to the
// robot's webhook (https://oapi.dingtalk.com/robot/send?access_token=...),
// signed with the robot's secret when one is configured ("加签": a
// millisecond timestamp and sign = base64(HMAC-SHA256(secret,
// timestamp+"\n"+secret)), both added to the query).
//
// DingTalk answers HTTP 200 with {"errcode":0,"errmsg":"ok"} on success and
// a non-zero errcode otherwise; the package turns that into a
// channel.Failure and does nothing more (no retries, no events). It calls
// out only through the SSRF-guarded client it is given, and the
// access_token, the sign and the robot secret never appear in a Reason or
// an error.
package dingtalk
