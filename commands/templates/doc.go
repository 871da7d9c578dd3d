// Package templates is the write side and the HTTP surface of message
// templates: creating a template, publishing a new version of it, archiving
// it, reading its versions, listing templates, previewing a render, and the
// two calls the notification flow makes, Service.Resolve (at intake: pin the
// version, check the variables) and Service.Render (at attempt time: render
// the pinned version for one channel).
//
// A template is the event-sourced domain.Template aggregate in the stream
// "template-<id>". Commands load the stream, decide with
// domain.DecideTemplate and append with the version they decided on,
// retrying on a conflict, like the notification commands do. Reads of one
// template load its stream directly, so they always see the latest append.
// The list is served from an in-memory index of every template built by
// following the $all log; templates are few (hundreds, not millions), so
// the index holds a small summary of each and needs no view store.
//
// The package must not: write anything but template streams, keep state
// other than the index and a cache of immutable versions, read
// configuration or the environment, or import the notification commands
// (package commands may come to depend on this one).
package templates
