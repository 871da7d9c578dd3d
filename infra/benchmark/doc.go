// Package benchmark holds the workloads behind `herald bench` and
// `make bench`: they drive a real engine or a real server and report figures.
// Nothing here is used while serving, and no test asserts on its timings.
package benchmark
