{
  "alg": "Ed25519",
  "key_id": "ac843185968c4980",
  "value": "H257xyn/+wGbSsHqEHekmOokUF8JwTZIxqOaHR7t84PJQRq09g2YvRavie9RzaW78+AId/1NvKlQx9ahTS+VCA=="
}
