// Package kafkaio is everything in kgate that talks to Kafka, and the only
// package that imports confluent-kafka-go.
//
// A Producer publishes batches and reports where each message landed; a
// Subscription (one consumer group member per Subscribe stream) delivers
// records and maps acks and nacks onto stored offsets and seeks. Errors come
// back as *Error values whose Kind says what a client can do about them, so
// that callers never look at librdkafka error codes.
package kafkaio
