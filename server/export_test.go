package server

// CodeOf exposes codeOf to the external tests.
var CodeOf = codeOf
