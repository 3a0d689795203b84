// Package kafkaio is everything in kgate that talks to Kafka, and the only
// package of the gateway that imports confluent-kafka-go (the bench's
// direct clients, in kafkaio/direct, are the only other one).
//
// A Producer publishes batches and reports where each message landed; a
// Subscription (one consumer group member per Subscribe stream) delivers
// records and maps acks and nacks onto stored offsets and seeks. Errors come
// back as *Error values whose Kind says what a client can do about them, so
// that callers never look at librdkafka error codes.
package kafkaio
