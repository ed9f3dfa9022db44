package commands

// SignatureForTest is the signature of a value's body, for the fuzz test.
func SignatureForTest(k Key, body string) string { return k.mac(body) }
