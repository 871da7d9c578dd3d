// Package httpserver runs Herald's HTTP listener: the chi router with the
// common middleware, the health endpoints, and a graceful shutdown that stops
// intake before the stores close. It knows nothing of notifications; the API
// packages mount their routes on the router it is given.
package httpserver
