"""deadletters: scheduled import of the cloud dead-letter queues into the dead-letter store."""
