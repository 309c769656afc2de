{
  "alg": "Ed25519",
  "key_id": "ac843185968c4980",
  "value": "DwzAsBd1UgXWU3EewEdVgVeubHOWKJQt5aUtGoakFJY+vGiDxcrtVv8kcwRLenvJhx+19zKPV3yXTNUEbGRqBw=="
}
