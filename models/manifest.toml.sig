{
  "alg": "Ed25519",
  "key_id": "ac843185968c4980",
  "value": "fB7qJOqDZJTg/ONz7/7x3WWat48LaC3xQdf2sN4/yhKgpmXgqdPoML7roTAh6j3yVnGH5QclVbkVTkjHt3jYDQ=="
}
