{
  "alg": "Ed25519",
  "key_id": "ac843185968c4980",
  "value": "Ggj0f8lOyG868gpkSmeaIoG+rJTda0qRsGxy6/3CIb3OykO4+QXZWCFi4RDJTBqKHE13w8Qo9/l2q7wvsdRVCw=="
}
