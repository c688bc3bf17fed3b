// Package storage owns pools, the image library and VM disks; every qcow2 fact comes from qemu-img.
//
// A DirPool is a directory with two children: images/ holds the library's read-only bases
// (and, transiently, uploads being staged as .staging-* files), disks/ holds VMs' qcow2
// overlays. The Library keeps image metadata in package store and files in the pool.
// All qemu-img calls go through a Runner so tests can fake them.
package storage
