-- the stores of release e18da97 (postgresql)

-- enrollment

CREATE TABLE enrollment_consents (
	person_id VARCHAR(36) NOT NULL, 
	partner_id VARCHAR(36) NOT NULL, 
	granted BOOLEAN NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (person_id, partner_id)
);

CREATE TABLE enrollment_idempotency (
	organization_id VARCHAR(36) NOT NULL, 
	key VARCHAR(255) NOT NULL, 
	request_sha256 VARCHAR(64) NOT NULL, 
	status_code INTEGER NOT NULL, 
	body JSON NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (organization_id, key)
);

CREATE INDEX enrollment_idempotency_created ON enrollment_idempotency (created_at);

CREATE TABLE enrollment_organizations (
	organization_id VARCHAR(36) NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	api_key_sha256 VARCHAR(64) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (organization_id), 
	UNIQUE (api_key_sha256)
);

CREATE TABLE enrollment_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE enrollment_persons (
	person_id VARCHAR(36) NOT NULL, 
	given_name VARCHAR(100) NOT NULL, 
	family_name VARCHAR(100) NOT NULL, 
	email VARCHAR(254) NOT NULL, 
	birth_date DATE NOT NULL, 
	county VARCHAR(200), 
	education_level VARCHAR(40), 
	demographics JSON NOT NULL, 
	email_key VARCHAR(254) NOT NULL, 
	name_birth_key VARCHAR(300) NOT NULL, 
	access_token_sha256 VARCHAR(64) NOT NULL, 
	possible_duplicate_of VARCHAR(36), 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (person_id), 
	UNIQUE (access_token_sha256)
);

CREATE INDEX ix_enrollment_persons_email_key ON enrollment_persons (email_key);

CREATE INDEX ix_enrollment_persons_name_birth_key ON enrollment_persons (name_birth_key);

-- verification

CREATE TABLE sla_items (
	item_id VARCHAR(80) NOT NULL, 
	queue VARCHAR(30) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	record_id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36), 
	partition INTEGER NOT NULL, 
	submitted_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	warn_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	deadline TIMESTAMP WITH TIME ZONE NOT NULL, 
	warned_at TIMESTAMP WITH TIME ZONE, 
	breached_at TIMESTAMP WITH TIME ZONE, 
	closed_at TIMESTAMP WITH TIME ZONE, 
	elapsed_seconds FLOAT, 
	within_deadline BOOLEAN, 
	PRIMARY KEY (item_id)
);

CREATE INDEX sla_items_closed ON sla_items (queue, closed_at);

CREATE INDEX sla_items_open_warn ON sla_items (closed_at, warn_at);

CREATE TABLE sla_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE sla_partition_times (
	topic VARCHAR(249) NOT NULL, 
	partition INTEGER NOT NULL, 
	event_time TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (topic, partition)
);

CREATE TABLE sla_positions (
	topic VARCHAR(249) NOT NULL, 
	partition INTEGER NOT NULL, 
	"offset" BIGINT NOT NULL, 
	mark BIGINT, 
	PRIMARY KEY (topic, partition)
);

CREATE TABLE verification_api_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE verification_appeals (
	appeal_id VARCHAR(36) NOT NULL, 
	record_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	appeal_of VARCHAR(20) NOT NULL, 
	contested_version INTEGER NOT NULL, 
	statement TEXT, 
	state VARCHAR(20) NOT NULL, 
	filed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	decided_by VARCHAR(80), 
	decided_at TIMESTAMP WITH TIME ZONE, 
	note TEXT, 
	PRIMARY KEY (appeal_id), 
	UNIQUE (record_id, contested_version)
);

CREATE INDEX verification_appeals_state ON verification_appeals (state, filed_at);

CREATE TABLE verification_audit (
	id BIGSERIAL NOT NULL, 
	record_id VARCHAR(36) NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	actor VARCHAR(80) NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	detail JSON NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX verification_audit_record ON verification_audit (record_id, id);

CREATE TABLE verification_credentials (
	credential_id VARCHAR(36) NOT NULL, 
	record_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36), 
	credential_type VARCHAR(40) NOT NULL, 
	document JSON NOT NULL, 
	list_id VARCHAR(20) NOT NULL, 
	status_index INTEGER NOT NULL, 
	revoked BOOLEAN NOT NULL, 
	revoked_reason TEXT, 
	issued_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (credential_id), 
	UNIQUE (record_id)
);

CREATE INDEX verification_credentials_revoked ON verification_credentials (list_id, revoked);

CREATE TABLE verification_organizations (
	organization_id VARCHAR(36) NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	api_key_sha256 VARCHAR(64), 
	PRIMARY KEY (organization_id), 
	UNIQUE (api_key_sha256)
);

CREATE TABLE verification_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE verification_persons (
	person_id VARCHAR(36) NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	PRIMARY KEY (person_id), 
	UNIQUE (token_sha256)
);

CREATE TABLE verification_positions (
	topic VARCHAR(249) NOT NULL, 
	partition INTEGER NOT NULL, 
	"offset" BIGINT NOT NULL, 
	mark BIGINT, 
	PRIMARY KEY (topic, partition)
);

CREATE TABLE verification_records (
	record_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36), 
	submitter_kind VARCHAR(20) NOT NULL, 
	record_type VARCHAR(20) NOT NULL, 
	data JSON NOT NULL, 
	submitted_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	correlation_id VARCHAR(100) NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	queue VARCHAR(30), 
	policy_rule VARCHAR(100), 
	version INTEGER NOT NULL, 
	reason_code VARCHAR(40), 
	note TEXT, 
	decided_by VARCHAR(80), 
	decided_at TIMESTAMP WITH TIME ZONE, 
	decision_version INTEGER, 
	credential_id VARCHAR(36), 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (record_id)
);

CREATE INDEX verification_records_awaiting ON verification_records (organization_id, state);

CREATE INDEX verification_records_person ON verification_records (person_id);

CREATE INDEX verification_records_state ON verification_records (state, submitted_at);

CREATE TABLE verification_reviewers (
	reviewer_id VARCHAR(36) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (reviewer_id), 
	UNIQUE (token_sha256)
);

CREATE TABLE verification_status_entries (
	list_id VARCHAR(20) NOT NULL, 
	status_index INTEGER NOT NULL, 
	credential_id VARCHAR(36) NOT NULL, 
	PRIMARY KEY (list_id, status_index)
);

CREATE TABLE verification_status_lists (
	list_id VARCHAR(20) NOT NULL, 
	size INTEGER NOT NULL, 
	used INTEGER NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (list_id)
);

-- wallet

CREATE TABLE wallet_api_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE wallet_audit (
	id BIGSERIAL NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	share_id VARCHAR(36), 
	actor VARCHAR(80) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	detail JSON NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX wallet_audit_person ON wallet_audit (person_id, at);

CREATE TABLE wallet_demographics (
	person_id VARCHAR(36) NOT NULL, 
	data JSON NOT NULL, 
	PRIMARY KEY (person_id)
);

CREATE TABLE wallet_organizations (
	organization_id VARCHAR(36) NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	PRIMARY KEY (organization_id)
);

CREATE TABLE wallet_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE wallet_persons (
	person_id VARCHAR(36) NOT NULL, 
	display_name VARCHAR(400) NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	enrolled_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (person_id), 
	UNIQUE (token_sha256)
);

CREATE TABLE wallet_positions (
	topic VARCHAR(249) NOT NULL, 
	partition INTEGER NOT NULL, 
	"offset" BIGINT NOT NULL, 
	mark BIGINT, 
	PRIMARY KEY (topic, partition)
);

CREATE TABLE wallet_records (
	record_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	type VARCHAR(20) NOT NULL, 
	title VARCHAR(300) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	submitted_by VARCHAR(36) NOT NULL, 
	submitter_kind VARCHAR(20) NOT NULL, 
	submitted_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	projected_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (record_id)
);

CREATE INDEX wallet_records_person ON wallet_records (person_id, submitted_at);

CREATE TABLE wallet_shares (
	share_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	audience VARCHAR(200) NOT NULL, 
	record_ids JSON NOT NULL, 
	include_demographics BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	revoked_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (share_id), 
	UNIQUE (token_sha256)
);

CREATE INDEX wallet_shares_person ON wallet_shares (person_id, created_at);

CREATE TABLE wallet_skills (
	record_id VARCHAR(36) NOT NULL, 
	skill_id VARCHAR(80) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	verified BOOLEAN NOT NULL, 
	source VARCHAR(20) NOT NULL, 
	matched_on VARCHAR(300) NOT NULL, 
	credential_id VARCHAR(100), 
	ordinal INTEGER NOT NULL, 
	PRIMARY KEY (record_id, skill_id)
);

CREATE INDEX wallet_skills_person ON wallet_skills (person_id);

CREATE TABLE wallet_verifications (
	record_id VARCHAR(36) NOT NULL, 
	version INTEGER NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	data JSON NOT NULL, 
	PRIMARY KEY (record_id, version)
);

CREATE INDEX wallet_verifications_person ON wallet_verifications (person_id);

-- notifications

CREATE TABLE notifications_agreements (
	partner_id VARCHAR(36) NOT NULL, 
	elements JSON NOT NULL, 
	version INTEGER NOT NULL, 
	applied_version INTEGER NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (partner_id)
);

CREATE TABLE notifications_deliveries (
	delivery_id VARCHAR(40) NOT NULL, 
	subscription_id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36) NOT NULL, 
	event_type VARCHAR(60) NOT NULL, 
	event_id VARCHAR(36) NOT NULL, 
	body BYTEA NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	leased_until TIMESTAMP WITH TIME ZONE, 
	last_status INTEGER, 
	last_error VARCHAR(500), 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	delivered_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (delivery_id)
);

CREATE INDEX ix_notifications_deliveries_subscription_id ON notifications_deliveries (subscription_id);

CREATE INDEX notifications_deliveries_due ON notifications_deliveries (state, next_attempt_at);

CREATE INDEX notifications_deliveries_org ON notifications_deliveries (organization_id, created_at);

CREATE TABLE notifications_messages (
	message_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	event_id VARCHAR(36) NOT NULL, 
	context JSON NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	leased_until TIMESTAMP WITH TIME ZONE, 
	to_address VARCHAR(254), 
	subject VARCHAR(300), 
	last_error VARCHAR(500), 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (message_id)
);

CREATE INDEX ix_notifications_messages_person_id ON notifications_messages (person_id);

CREATE INDEX notifications_messages_due ON notifications_messages (state, next_attempt_at);

CREATE TABLE notifications_organizations (
	organization_id VARCHAR(36) NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	api_key_sha256 VARCHAR(64), 
	PRIMARY KEY (organization_id)
);

CREATE INDEX ix_notifications_organizations_api_key_sha256 ON notifications_organizations (api_key_sha256);

CREATE TABLE notifications_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE notifications_persons (
	person_id VARCHAR(36) NOT NULL, 
	email VARCHAR(254) NOT NULL, 
	given_name VARCHAR(100) NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	PRIMARY KEY (person_id)
);

CREATE INDEX ix_notifications_persons_token_sha256 ON notifications_persons (token_sha256);

CREATE TABLE notifications_positions (
	topic VARCHAR(249) NOT NULL, 
	partition INTEGER NOT NULL, 
	"offset" BIGINT NOT NULL, 
	mark BIGINT, 
	PRIMARY KEY (topic, partition)
);

CREATE TABLE notifications_preferences (
	person_id VARCHAR(36) NOT NULL, 
	email_enabled BOOLEAN NOT NULL, 
	events JSON NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (person_id)
);

CREATE TABLE notifications_records (
	record_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	title VARCHAR(300) NOT NULL, 
	submitted_by VARCHAR(36) NOT NULL, 
	PRIMARY KEY (record_id)
);

CREATE TABLE notifications_subscriptions (
	subscription_id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36) NOT NULL, 
	url VARCHAR(2000) NOT NULL, 
	event_types JSON NOT NULL, 
	secret VARCHAR(100) NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (subscription_id)
);

CREATE INDEX ix_notifications_subscriptions_organization_id ON notifications_subscriptions (organization_id);

CREATE TABLE partner_feed_consents (
	person_id VARCHAR(36) NOT NULL, 
	partner_id VARCHAR(36) NOT NULL, 
	granted BOOLEAN NOT NULL, 
	PRIMARY KEY (person_id, partner_id)
);

CREATE INDEX partner_feed_consents_partner ON partner_feed_consents (partner_id, granted);

CREATE TABLE partner_feed_counters (
	partner_id VARCHAR(36) NOT NULL, 
	seq BIGINT NOT NULL, 
	PRIMARY KEY (partner_id)
);

CREATE TABLE partner_feed_entries (
	partner_id VARCHAR(36) NOT NULL, 
	seq BIGINT NOT NULL, 
	pseudonymous_id VARCHAR(80) NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	body TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (partner_id, seq)
);

CREATE TABLE partner_feed_outbox (
	id BIGSERIAL NOT NULL, 
	topic VARCHAR(249) NOT NULL, 
	key BYTEA, 
	value BYTEA NOT NULL, 
	headers BYTEA NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE partner_feed_persons (
	person_id VARCHAR(36) NOT NULL, 
	birth_year INTEGER NOT NULL, 
	county VARCHAR(100), 
	education_level VARCHAR(40), 
	PRIMARY KEY (person_id)
);

CREATE TABLE partner_feed_positions (
	topic VARCHAR(249) NOT NULL, 
	partition INTEGER NOT NULL, 
	"offset" BIGINT NOT NULL, 
	mark BIGINT, 
	PRIMARY KEY (topic, partition)
);

CREATE TABLE partner_feed_published (
	partner_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	pseudonymous_id VARCHAR(80) NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	digest VARCHAR(64), 
	PRIMARY KEY (partner_id, person_id)
);

CREATE TABLE partner_feed_records (
	record_id VARCHAR(36) NOT NULL, 
	person_id VARCHAR(36) NOT NULL, 
	kind VARCHAR(20), 
	role_category VARCHAR(7), 
	employment_status VARCHAR(20), 
	started_on DATE, 
	hours FLOAT, 
	status VARCHAR(20), 
	credential_type VARCHAR(100), 
	PRIMARY KEY (record_id)
);

CREATE INDEX ix_partner_feed_records_person_id ON partner_feed_records (person_id);
