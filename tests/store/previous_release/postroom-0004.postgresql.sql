--
-- PostgreSQL database dump
--

\restrict mjbygkqMUQ8YhjRHdD4rwoDblSwcjtpbSagelhlHQhD1cNH9OUEmn63DUWCmP0P

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: postroom_release_0004; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA postroom_release_0004;


SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: api_tokens; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.api_tokens (
    id integer NOT NULL,
    name character varying(200) NOT NULL,
    token_sha256 character varying(64) NOT NULL,
    prefix character varying(16) NOT NULL,
    is_admin boolean NOT NULL,
    created_at timestamp without time zone NOT NULL,
    last_used_at timestamp without time zone,
    revoked_at timestamp without time zone
);


--
-- Name: api_tokens_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.api_tokens_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: api_tokens_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.api_tokens_id_seq OWNED BY postroom_release_0004.api_tokens.id;


--
-- Name: attachments; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.attachments (
    id integer NOT NULL,
    message_pk integer NOT NULL,
    filename character varying(255) NOT NULL,
    content_type character varying(255) NOT NULL,
    size bigint NOT NULL,
    sha256 character varying(64) NOT NULL,
    inline boolean NOT NULL,
    content_id character varying(998),
    blob_key character varying(200),
    skipped_reason text,
    in_history boolean NOT NULL
);


--
-- Name: attachments_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.attachments_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: attachments_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.attachments_id_seq OWNED BY postroom_release_0004.attachments.id;


--
-- Name: connection_logs; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.connection_logs (
    id integer NOT NULL,
    connection_id integer NOT NULL,
    at timestamp without time zone NOT NULL,
    level character varying(10) NOT NULL,
    event character varying(50) NOT NULL,
    message text NOT NULL
);


--
-- Name: connection_logs_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.connection_logs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: connection_logs_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.connection_logs_id_seq OWNED BY postroom_release_0004.connection_logs.id;


--
-- Name: connections; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.connections (
    id integer NOT NULL,
    name character varying(200) NOT NULL,
    description text NOT NULL,
    mode character varying(16) NOT NULL,
    enabled boolean NOT NULL,
    status character varying(16) NOT NULL,
    status_message text NOT NULL,
    status_changed_at timestamp without time zone NOT NULL,
    revision integer NOT NULL,
    check_interval double precision NOT NULL,
    mark_as_read boolean NOT NULL,
    unread_only boolean NOT NULL,
    smtp_signature text NOT NULL,
    max_attachment_bytes bigint NOT NULL,
    extra json NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    outbound character varying(16) DEFAULT 'smtp'::character varying NOT NULL,
    sendgrid_api_key_enc text DEFAULT ''::text NOT NULL,
    sendgrid_api_url character varying(255) DEFAULT 'https://api.sendgrid.com'::character varying NOT NULL,
    oauth_enabled boolean DEFAULT false NOT NULL,
    inbound_key character varying(64),
    webhook_provider character varying(16) DEFAULT ''::character varying NOT NULL,
    webhook_signing_key_enc text DEFAULT ''::text NOT NULL,
    delete_after_import boolean DEFAULT false NOT NULL,
    save_to_sent boolean DEFAULT true NOT NULL,
    response_delay_min double precision DEFAULT '0'::double precision NOT NULL,
    response_delay_max double precision DEFAULT '0'::double precision NOT NULL,
    rotation integer DEFAULT 0 NOT NULL,
    allow_plaintext_auth boolean DEFAULT false NOT NULL
);


--
-- Name: connections_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.connections_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: connections_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.connections_id_seq OWNED BY postroom_release_0004.connections.id;


--
-- Name: contacts; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.contacts (
    id integer NOT NULL,
    email character varying(320) NOT NULL,
    name character varying(200) NOT NULL,
    customer_id integer,
    created_at timestamp without time zone NOT NULL
);


--
-- Name: contacts_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.contacts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: contacts_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.contacts_id_seq OWNED BY postroom_release_0004.contacts.id;


--
-- Name: conversations; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.conversations (
    id integer NOT NULL,
    connection_id integer,
    mailbox_id integer,
    contact_id integer,
    customer_id integer,
    subject text NOT NULL,
    description text NOT NULL,
    status character varying(16) NOT NULL,
    assignee character varying(200),
    team character varying(200),
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    last_message_at timestamp without time zone NOT NULL
);


--
-- Name: conversations_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.conversations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: conversations_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.conversations_id_seq OWNED BY postroom_release_0004.conversations.id;


--
-- Name: customer_domains; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.customer_domains (
    id integer NOT NULL,
    customer_id integer NOT NULL,
    domain character varying(255) NOT NULL
);


--
-- Name: customer_domains_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.customer_domains_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: customer_domains_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.customer_domains_id_seq OWNED BY postroom_release_0004.customer_domains.id;


--
-- Name: customers; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.customers (
    id integer NOT NULL,
    name character varying(200) NOT NULL,
    created_at timestamp without time zone NOT NULL
);


--
-- Name: customers_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.customers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: customers_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.customers_id_seq OWNED BY postroom_release_0004.customers.id;


--
-- Name: leases; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.leases (
    name character varying(200) NOT NULL,
    owner character varying(100) NOT NULL,
    expires_at timestamp without time zone NOT NULL
);


--
-- Name: mailboxes; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.mailboxes (
    id integer NOT NULL,
    connection_id integer NOT NULL,
    "position" integer NOT NULL,
    address character varying(320) NOT NULL,
    email_name character varying(200) NOT NULL,
    message_content_type character varying(20) NOT NULL,
    username character varying(320) NOT NULL,
    password_enc text NOT NULL,
    imap_host character varying(255) NOT NULL,
    imap_port integer NOT NULL,
    imap_encryption character varying(16) NOT NULL,
    imap_folder character varying(255) NOT NULL,
    validate_certificate boolean NOT NULL,
    smtp_host character varying(255) NOT NULL,
    smtp_port integer NOT NULL,
    smtp_encryption character varying(16) NOT NULL,
    smtp_username character varying(320) NOT NULL,
    smtp_password_enc text NOT NULL,
    uidvalidity bigint,
    last_uid bigint NOT NULL,
    reply_to character varying(320) DEFAULT ''::character varying NOT NULL,
    sent_folder character varying(255) DEFAULT ''::character varying NOT NULL,
    oauth_client_id character varying(500) DEFAULT ''::character varying NOT NULL,
    oauth_client_secret_enc text DEFAULT ''::text NOT NULL,
    oauth_refresh_token_enc text DEFAULT ''::text NOT NULL,
    oauth_token_uri character varying(500) DEFAULT ''::character varying NOT NULL,
    oauth_access_token_enc text DEFAULT ''::text NOT NULL,
    oauth_access_expires_at timestamp without time zone
);


--
-- Name: mailboxes_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.mailboxes_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: mailboxes_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.mailboxes_id_seq OWNED BY postroom_release_0004.mailboxes.id;


--
-- Name: messages; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.messages (
    id integer NOT NULL,
    conversation_id integer NOT NULL,
    connection_id integer,
    direction character varying(16) NOT NULL,
    author character varying(200) NOT NULL,
    from_email character varying(320) NOT NULL,
    from_name character varying(200) NOT NULL,
    "to" json NOT NULL,
    cc json NOT NULL,
    reply_to json NOT NULL,
    subject text NOT NULL,
    message_id character varying(998),
    in_reply_to character varying(998),
    "references" json NOT NULL,
    text text NOT NULL,
    html text NOT NULL,
    reply_text text NOT NULL,
    signature text NOT NULL,
    quoted_text text NOT NULL,
    classification json NOT NULL,
    headers json NOT NULL,
    sent_at timestamp without time zone,
    delivery_status character varying(16),
    delivery_detail text NOT NULL,
    created_at timestamp without time zone NOT NULL,
    degraded_reason text DEFAULT ''::text NOT NULL
);


--
-- Name: messages_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.messages_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: messages_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.messages_id_seq OWNED BY postroom_release_0004.messages.id;


--
-- Name: outbox; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.outbox (
    id integer NOT NULL,
    message_pk integer,
    connection_id integer,
    mailbox_id integer,
    raw bytea NOT NULL,
    message_id character varying(998) NOT NULL,
    envelope_from character varying(320) NOT NULL,
    recipients json NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamp without time zone NOT NULL,
    last_error text NOT NULL,
    smtp_reply text NOT NULL,
    claimed_by character varying(100),
    claimed_until timestamp without time zone,
    created_at timestamp without time zone NOT NULL,
    sent_at timestamp without time zone,
    sent_copy character varying(16),
    sent_copy_attempts integer DEFAULT 0 NOT NULL,
    sent_copy_next_at timestamp without time zone,
    sent_copy_error text DEFAULT ''::text NOT NULL,
    sent_copy_folder character varying(255) DEFAULT ''::character varying NOT NULL
);


--
-- Name: outbox_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.outbox_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.outbox_id_seq OWNED BY postroom_release_0004.outbox.id;


--
-- Name: raw_bodies; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.raw_bodies (
    raw_id integer NOT NULL,
    data bytea NOT NULL
);


--
-- Name: raw_messages; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.raw_messages (
    id integer NOT NULL,
    connection_id integer,
    mailbox_id integer,
    dedupe_key character varying(1000) NOT NULL,
    origin character varying(16) NOT NULL,
    header_message_id character varying(998),
    size integer NOT NULL,
    received_at timestamp without time zone NOT NULL,
    status character varying(16) NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    claimed_by character varying(100),
    claimed_until timestamp without time zone,
    processed_at timestamp without time zone,
    message_pk integer
);


--
-- Name: raw_messages_id_seq; Type: SEQUENCE; Schema: postroom_release_0004; Owner: -
--

CREATE SEQUENCE postroom_release_0004.raw_messages_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: raw_messages_id_seq; Type: SEQUENCE OWNED BY; Schema: postroom_release_0004; Owner: -
--

ALTER SEQUENCE postroom_release_0004.raw_messages_id_seq OWNED BY postroom_release_0004.raw_messages.id;


--
-- Name: webhook_replays; Type: TABLE; Schema: postroom_release_0004; Owner: -
--

CREATE TABLE postroom_release_0004.webhook_replays (
    key character varying(200) NOT NULL,
    seen_at timestamp without time zone NOT NULL
);


--
-- Name: api_tokens id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.api_tokens ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.api_tokens_id_seq'::regclass);


--
-- Name: attachments id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.attachments ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.attachments_id_seq'::regclass);


--
-- Name: connection_logs id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connection_logs ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.connection_logs_id_seq'::regclass);


--
-- Name: connections id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connections ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.connections_id_seq'::regclass);


--
-- Name: contacts id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.contacts ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.contacts_id_seq'::regclass);


--
-- Name: conversations id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.conversations ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.conversations_id_seq'::regclass);


--
-- Name: customer_domains id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.customer_domains ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.customer_domains_id_seq'::regclass);


--
-- Name: customers id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.customers ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.customers_id_seq'::regclass);


--
-- Name: mailboxes id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.mailboxes ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.mailboxes_id_seq'::regclass);


--
-- Name: messages id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.messages ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.messages_id_seq'::regclass);


--
-- Name: outbox id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.outbox ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.outbox_id_seq'::regclass);


--
-- Name: raw_messages id; Type: DEFAULT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_messages ALTER COLUMN id SET DEFAULT nextval('postroom_release_0004.raw_messages_id_seq'::regclass);


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.alembic_version (version_num) VALUES ('0004');


--
-- Data for Name: api_tokens; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.api_tokens (id, name, token_sha256, prefix, is_admin, created_at, last_used_at, revoked_at) VALUES (2, 'automation', 'aed604ba8b818d31e81ae5291e2ed4aa47e9c63a556e1a9528dc35b7d6373086', 'pr_7LcWiDX', true, '2026-12-07 19:01:07.082508', NULL, NULL);
INSERT INTO postroom_release_0004.api_tokens (id, name, token_sha256, prefix, is_admin, created_at, last_used_at, revoked_at) VALUES (3, 'read only', '102feeb03833e7bf8a42132958c3d7564a4e45da651ec0ba52cf3c695886f0f5', 'pr_wD9mIjB', false, '2026-12-07 19:01:07.086439', NULL, NULL);
INSERT INTO postroom_release_0004.api_tokens (id, name, token_sha256, prefix, is_admin, created_at, last_used_at, revoked_at) VALUES (4, 'revoked', '93bd225fa70cbc531cbf0b69461c40546c72c9f59643102d3e366402a48909b2', 'pr_SadBs86', true, '2026-12-07 19:01:07.088375', NULL, '2026-12-07 19:01:07.089647');
INSERT INTO postroom_release_0004.api_tokens (id, name, token_sha256, prefix, is_admin, created_at, last_used_at, revoked_at) VALUES (1, 'admin (cli)', '5ce42f173e4b83f7a97150df3f605b1097cab470d241d2734e30acf8f479fbb4', 'pr_sSY5LXd', true, '2026-12-07 19:01:06.195874', '2026-12-07 19:01:08.200798', NULL);


--
-- Data for Name: attachments; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.attachments (id, message_pk, filename, content_type, size, sha256, inline, content_id, blob_key, skipped_reason, in_history) VALUES (1, 5, 'broken.pdf', 'application/pdf', 1026, 'c7d1b9b20df8a2bf2f1e0d00d84bcb56d05e56a044be7f3616f6e99f4a18bd0d', false, NULL, 'c7d1b9b20df8a2bf2f1e0d00d84bcb56d05e56a044be7f3616f6e99f4a18bd0d', NULL, false);
INSERT INTO postroom_release_0004.attachments (id, message_pk, filename, content_type, size, sha256, inline, content_id, blob_key, skipped_reason, in_history) VALUES (2, 8, 'Contract 25 04 2020.docx', 'message/rfc822', 4047, '9c7ef89b19bcb8ad46713d6f293650a3d5836dfa01172970148a162ca5652796', false, NULL, '9c7ef89b19bcb8ad46713d6f293650a3d5836dfa01172970148a162ca5652796', NULL, false);


--
-- Data for Name: connection_logs; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.connection_logs (id, connection_id, at, level, event, message) VALUES (1, 4, '2026-12-07 19:01:12.453179', 'info', 'sent', 'sent <pr.t.aqyw2e375zv.6iucmcowzht3lfrbvoiz5j7a@acme.test>: 202 Accepted; X-Message-Id 8VnDfUTkbqEQ7223tksjVg');
INSERT INTO postroom_release_0004.connection_logs (id, connection_id, at, level, event, message) VALUES (2, 1, '2026-12-07 19:01:12.500149', 'error', 'send_failed', '<pr.t.3cvi7kag5wp.kegmmp47knw5r55esgfyp4vz@acme.test> not sent: 550 5.1.1 SMTP support@acme.test: every recipient refused: raasdnil@gmail.com: 550 5.1.1 No such user here');
INSERT INTO postroom_release_0004.connection_logs (id, connection_id, at, level, event, message) VALUES (3, 1, '2026-12-07 19:01:12.527967', 'info', 'sent', 'sent <pr.t.2edbq46ip2d.nab3kfooaaejd2bflr624bfk@acme.test>: 250 2.0.0 OK: queued');
INSERT INTO postroom_release_0004.connection_logs (id, connection_id, at, level, event, message) VALUES (4, 1, '2026-12-07 19:01:12.538786', 'info', 'sent_folder', '<pr.t.2edbq46ip2d.nab3kfooaaejd2bflr624bfk@acme.test> filed in Sent Items');
INSERT INTO postroom_release_0004.connection_logs (id, connection_id, at, level, event, message) VALUES (5, 3, '2026-12-07 19:01:12.585356', 'info', 'sent', 'sent <pr.t.bqrgmbxyxod.mj2xepd4g43imo7cjoku3bhz@acme.test>: 250 2.0.0 OK: queued');


--
-- Data for Name: connections; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.connections (id, name, description, mode, enabled, status, status_message, status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature, max_attachment_bytes, extra, created_at, updated_at, outbound, sendgrid_api_key_enc, sendgrid_api_url, oauth_enabled, inbound_key, webhook_provider, webhook_signing_key_enc, delete_after_import, save_to_sent, response_delay_min, response_delay_max, rotation, allow_plaintext_auth) VALUES (2, 'Sales', '', 'pop3', true, 'STARTING', '', '2026-12-07 19:01:08.910802', 2, 15, true, false, '', 10485760, '{}', '2026-12-07 19:01:08.362335', '2026-12-07 19:01:08.911548', 'smtp', '', 'https://api.sendgrid.com', false, NULL, '', '', true, true, 3600, 3600, 0, false);
INSERT INTO postroom_release_0004.connections (id, name, description, mode, enabled, status, status_message, status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature, max_attachment_bytes, extra, created_at, updated_at, outbound, sendgrid_api_key_enc, sendgrid_api_url, oauth_enabled, inbound_key, webhook_provider, webhook_signing_key_enc, delete_after_import, save_to_sent, response_delay_min, response_delay_max, rotation, allow_plaintext_auth) VALUES (4, 'Mailgun', '', 'webhook', true, 'STARTING', '', '2026-12-07 19:01:08.980894', 2, 15, true, false, '', 10485760, '{}', '2026-12-07 19:01:08.465652', '2026-12-07 19:01:08.981634', 'sendgrid', 'gAAAAABrFwJ0UFaQuQBu8j6-9FnZ_j6__VAiHDcnJMp0J6OGSNh62Xga7dFRzwkTeKU613HmDZnpNWtRZxe0A7386tpvTkk6KL_81gxW9ec1S27HS13FOyc=', 'http://127.0.0.1:33745', false, 'f7e79fdfc85ab68d9ba557bf', 'mailgun', 'gAAAAABrFwJ0oJwbwtPHd3kSgK5RtY21Wo5NIJ_pI1gCE40ZAkezGItJ-sPiR0tXYQDRoCF2p2zuJVxOEwmIpJ0hpgUrvkGYkcv-m7Pe12rhtapq4Hd8vlY=', false, true, 0, 0, 0, false);
INSERT INTO postroom_release_0004.connections (id, name, description, mode, enabled, status, status_message, status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature, max_attachment_bytes, extra, created_at, updated_at, outbound, sendgrid_api_key_enc, sendgrid_api_url, oauth_enabled, inbound_key, webhook_provider, webhook_signing_key_enc, delete_after_import, save_to_sent, response_delay_min, response_delay_max, rotation, allow_plaintext_auth) VALUES (3, 'Helpdesk (forwarded)', '', 'forwarding', true, 'STARTING', '', '2026-12-07 19:01:08.948383', 2, 15, true, false, '', 10485760, '{}', '2026-12-07 19:01:08.40249', '2026-12-07 19:01:12.173786', 'smtp', '', 'https://api.sendgrid.com', false, 'a27eaf54255816010875a50d', '', '', false, true, 0, 0, 1, false);
INSERT INTO postroom_release_0004.connections (id, name, description, mode, enabled, status, status_message, status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature, max_attachment_bytes, extra, created_at, updated_at, outbound, sendgrid_api_key_enc, sendgrid_api_url, oauth_enabled, inbound_key, webhook_provider, webhook_signing_key_enc, delete_after_import, save_to_sent, response_delay_min, response_delay_max, rotation, allow_plaintext_auth) VALUES (1, 'Support', 'Customer support, IMAP', 'imap', false, 'STOPPED', '', '2026-12-07 19:01:12.794271', 2, 30, true, false, '-- 
{{ sender_name }}, Acme Support', 10485760, '{}', '2026-12-07 19:01:08.280035', '2026-12-07 19:01:12.795737', 'smtp', '', 'https://api.sendgrid.com', false, NULL, '', '', false, true, 0, 0, 0, false);


--
-- Data for Name: contacts; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (1, 'test@lindsaar.net', 'Mikel Lindsaar', NULL, '2026-12-07 19:01:11.731038');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (2, 'jdoe@machine.example', 'John Doe', NULL, '2026-12-07 19:01:11.775445');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (3, 'mary@example.net', 'Mary Smith', NULL, '2026-12-07 19:01:11.781365');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (4, 'raasdnil@gmail.com', 'Mikel Lindsaar', NULL, '2026-12-07 19:01:11.800357');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (5, 'xxxx@xxxx.com', 'Test Tester', NULL, '2026-12-07 19:01:11.805397');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (6, 'jamis@37signals.com', 'Jamis Buck', NULL, '2026-12-07 19:01:11.823555');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (7, 'xxxxxxxx@xxx.org', 'Testing', NULL, '2026-12-07 19:01:11.829968');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (8, 'i.kor@company.ru', '', NULL, '2026-12-07 19:01:11.852364');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (9, 'atsushi@example.com', 'Atsushi Yoshida', NULL, '2026-12-07 19:01:11.859745');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (10, 'xxx@xxxx.xxx', '', NULL, '2026-12-07 19:01:11.868558');
INSERT INTO postroom_release_0004.contacts (id, email, name, customer_id, created_at) VALUES (11, 'erin@customer.test', 'Erin Example', NULL, '2026-12-07 19:01:12.166323');


--
-- Data for Name: conversations; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (4, 1, 1, 5, NULL, 'Another PDF with 🎉 Unicode chars in it 🍿', 'Just attaching another PDF, here, to see what the message looks like,
and to see if I can figure out what is going wrong here.', 'open', NULL, NULL, '2026-12-07 19:01:11.806855', '2026-12-07 19:01:11.806855', '2026-12-07 19:01:11.806855');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (5, 1, 2, 6, NULL, 'NOTE: 한국말로 하는 것', '대부분의 마찬가지로, 우리는 하나님을 믿습니다.

제 이름은 Jamis입니다.', 'open', NULL, NULL, '2026-12-07 19:01:11.825983', '2026-12-07 19:01:11.825983', '2026-12-07 19:01:11.825983');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (7, 2, 3, 8, NULL, 'статус    ', '
Новый заказ №28922 http://group.company.ru/ru/order/28922/process/
Создал: 
Клиент Ковчег (Гусев Дмитрий)

Сегменты:

- Москва - Тель-Авив, some-889, 15.03.2018, эконом: (15 взр.)

- Тель-Авив - Москва, some-890, 22.03.2018, эконом: (15 взр.)', 'open', NULL, NULL, '2026-12-07 19:01:11.8548', '2026-12-07 19:01:11.8548', '2026-12-07 19:01:11.8548');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (8, 3, 4, 9, NULL, 'Re: TEST	テストテスト', 'Hello', 'open', NULL, NULL, '2026-12-07 19:01:11.863033', '2026-12-07 19:01:11.863033', '2026-12-07 19:01:11.863033');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (9, 3, 4, 10, NULL, 'Filth', 'Some text', 'open', NULL, NULL, '2026-12-07 19:01:11.871617', '2026-12-07 19:01:11.871617', '2026-12-07 19:01:11.871617');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (3, 1, 1, 4, NULL, 'まみむめも', 'かきくえこ', 'pending', NULL, NULL, '2026-12-07 19:01:11.802074', '2026-12-07 19:01:12.065509', '2026-12-07 19:01:12.065509');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (6, 2, 3, 7, NULL, 'Re: Test reply email', 'Message body', 'pending', NULL, NULL, '2026-12-07 19:01:11.845384', '2026-12-07 19:01:12.097183', '2026-12-07 19:01:12.097183');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (10, 4, 5, 6, NULL, 'Re: Test: "漢字" mid "漢字" tail', '대부분의 마찬가지로, 우리는 하나님을 믿습니다.

제 이름은 Jamis입니다.', 'pending', NULL, NULL, '2026-12-07 19:01:11.878731', '2026-12-07 19:01:12.131027', '2026-12-07 19:01:12.131027');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (11, 3, 4, 11, NULL, 'Your renewal', '', 'pending', NULL, NULL, '2026-12-07 19:01:12.175588', '2026-12-07 19:01:12.180751', '2026-12-07 19:01:12.180751');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (2, 1, 1, 2, NULL, 'Saying Hello', 'This is a message just to say hello.
So, "Hello".', 'pending', NULL, NULL, '2026-12-07 19:01:11.777252', '2026-12-07 19:01:12.828435', '2026-12-07 19:01:11.988034');
INSERT INTO postroom_release_0004.conversations (id, connection_id, mailbox_id, contact_id, customer_id, subject, description, status, assignee, team, created_at, updated_at, last_message_at) VALUES (1, 1, 1, 1, NULL, 'Testing 123', 'Plain email.

Hope it works well!

Mikel', 'resolved', NULL, NULL, '2026-12-07 19:01:11.755218', '2026-12-07 19:01:12.866196', '2026-12-07 19:01:11.755218');


--
-- Data for Name: customer_domains; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--



--
-- Data for Name: customers; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--



--
-- Data for Name: leases; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--



--
-- Data for Name: mailboxes; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.mailboxes (id, connection_id, "position", address, email_name, message_content_type, username, password_enc, imap_host, imap_port, imap_encryption, imap_folder, validate_certificate, smtp_host, smtp_port, smtp_encryption, smtp_username, smtp_password_enc, uidvalidity, last_uid, reply_to, sent_folder, oauth_client_id, oauth_client_secret_enc, oauth_refresh_token_enc, oauth_token_uri, oauth_access_token_enc, oauth_access_expires_at) VALUES (3, 2, 0, 'sales@acme.test', '', 'text/plain', '', 'gAAAAABrFwJ0ymTYwAnhnOGct-RO3zID5Rve95RXOjFvKVxBKPxQploktKqFlQM0VaCuRpjl7P9PQekdAu38yxNrssSkXvOhMA==', 'pop.acme.test', 995, 'ssl', 'INBOX', true, '127.0.0.1', 33783, 'none', '', 'gAAAAABrFwJ0mEM9P4W0YZZry4s5QfcFNjhI6FOjE6PQjNDmoRvHqZdX4cdr7qmm7fBJlBl9vAdPosSi-Kw0FLK1I1S-WNTJB23gd4vQcZrKXA-22YjvLs4=', NULL, 0, '', '', '', '', '', '', '', NULL);
INSERT INTO postroom_release_0004.mailboxes (id, connection_id, "position", address, email_name, message_content_type, username, password_enc, imap_host, imap_port, imap_encryption, imap_folder, validate_certificate, smtp_host, smtp_port, smtp_encryption, smtp_username, smtp_password_enc, uidvalidity, last_uid, reply_to, sent_folder, oauth_client_id, oauth_client_secret_enc, oauth_refresh_token_enc, oauth_token_uri, oauth_access_token_enc, oauth_access_expires_at) VALUES (4, 3, 0, 'help@acme.test', '', 'text/plain', '', '', '', 993, 'ssl', 'INBOX', true, '127.0.0.1', 33783, 'none', '', 'gAAAAABrFwJ0H3ZYRW2-cgZAJa9yPfHGtlaHQQOtISPZzqIIjFuKkJ80zqOKfwzT1rE8Y3joTCn6VIuUM56312TAD-oOGWW3yXuWugA7R3izYmYNJcMDpUs=', NULL, 0, 'help@acme.test', '', '', '', '', '', '', NULL);
INSERT INTO postroom_release_0004.mailboxes (id, connection_id, "position", address, email_name, message_content_type, username, password_enc, imap_host, imap_port, imap_encryption, imap_folder, validate_certificate, smtp_host, smtp_port, smtp_encryption, smtp_username, smtp_password_enc, uidvalidity, last_uid, reply_to, sent_folder, oauth_client_id, oauth_client_secret_enc, oauth_refresh_token_enc, oauth_token_uri, oauth_access_token_enc, oauth_access_expires_at) VALUES (5, 4, 0, 'orders@acme.test', '', 'text/plain', '', '', '', 993, 'ssl', 'INBOX', true, '', 587, 'auto', '', '', NULL, 0, '', '', '', '', '', '', '', NULL);
INSERT INTO postroom_release_0004.mailboxes (id, connection_id, "position", address, email_name, message_content_type, username, password_enc, imap_host, imap_port, imap_encryption, imap_folder, validate_certificate, smtp_host, smtp_port, smtp_encryption, smtp_username, smtp_password_enc, uidvalidity, last_uid, reply_to, sent_folder, oauth_client_id, oauth_client_secret_enc, oauth_refresh_token_enc, oauth_token_uri, oauth_access_token_enc, oauth_access_expires_at) VALUES (1, 1, 0, 'support@acme.test', 'Acme Support', 'text/plain', '', 'gAAAAABrFwJ0eRLi1Ovwq2HF4fmDWWxKS4b32pxZAJAP8qKzbxswQhtvnlhvr9IUhMXdMKoCUe9x-PIqT6bX8gYoytkf0WqoQg==', 'imap.acme.test', 993, 'ssl', 'INBOX', true, '127.0.0.1', 33783, 'none', '', 'gAAAAABrFwJ0n1akoyCJTWR4iWaCpT3dWly58aAmhG-5bRQEaUhUqN0r2Ro7Sn5nEujMvo4eFmkYf7n1ao0jP_mL9XtcUk38oTpI0XhpimYrmtiqbOR-tCQ=', 1700000000, 200, '', 'Sent Items', '', '', '', '', '', NULL);
INSERT INTO postroom_release_0004.mailboxes (id, connection_id, "position", address, email_name, message_content_type, username, password_enc, imap_host, imap_port, imap_encryption, imap_folder, validate_certificate, smtp_host, smtp_port, smtp_encryption, smtp_username, smtp_password_enc, uidvalidity, last_uid, reply_to, sent_folder, oauth_client_id, oauth_client_secret_enc, oauth_refresh_token_enc, oauth_token_uri, oauth_access_token_enc, oauth_access_expires_at) VALUES (2, 1, 1, 'billing@acme.test', 'Acme Billing', 'text/plain', '', 'gAAAAABrFwJ0J14fP56EAvAw2QuwC9bm1t3pthC95iKUK9wHw0OhDNtrLHwnEyHpicPVN2n0EgRHHD-I8HsRRPZ2_VJhbjJJBg==', 'imap.acme.test', 993, 'ssl', 'INBOX', true, '127.0.0.1', 33783, 'none', '', 'gAAAAABrFwJ0pL9PyZQimHDWR8FLG4ESa5wY2_ycGNL7z0bAiG7D_MHQpPbG_HYXkYGoPYZA3-_FNmIk2eCQczCLB9mBPt1IPuO9EqrJfCms8LCDdexQFxg=', 1700000000, 101, '', 'Sent Items', '', '', '', '', '', NULL);


--
-- Data for Name: messages; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (1, 1, 1, 'in', '', 'test@lindsaar.net', 'Mikel Lindsaar', '[{"name": "Mikel Lindsaar", "email": "raasdnil@gmail.com"}]', '[]', '[]', 'Testing 123', '6B7EC235-5B17-4CA8-B2B8-39290DEB43A3@test.lindsaar.net', NULL, '[]', 'Plain email.

Hope it works well!

Mikel', '', 'Plain email.

Hope it works well!

Mikel', '', '', '{"kind": "human", "reasons": []}', '[["Delivered-To", "raasdnil@gmail.com"], ["Received", "by 10.140.178.13 with SMTP id a13cs354079rvf;        Fri, 21 Nov 2008 20:05:05 -0800 (PST)"], ["Received", "by 10.151.44.15 with SMTP id w15mr2254748ybj.98.1227326704711;        Fri, 21 Nov 2008 20:05:04 -0800 (PST)"], ["Return-Path", "<test@lindsaar.net>"], ["Received", "from mail11.tpgi.com.au (mail11.tpgi.com.au [203.12.160.161])        by mx.google.com with ESMTP id 10si5117885gxk.81.2008.11.21.20.05.03;        Fri, 21 Nov 2008 20:05:04 -0800 (PST)"], ["Received-SPF", "neutral (google.com: 203.12.160.161 is neither permitted nor denied by domain of test@lindsaar.net) client-ip=203.12.160.161;"], ["Authentication-Results", "mx.google.com; spf=neutral (google.com: 203.12.160.161 is neither permitted nor denied by domain of test@lindsaar.net) smtp.mail=test@lindsaar.net"], ["X-TPG-Junk-Status", "Message not scanned"], ["X-TPG-Antivirus", "Passed"], ["Received", "from [192.0.0.253] (60-241-138-146.static.tpgi.com.au [60.0.0.146])\tby mail11.tpgi.com.au (envelope-from test@lindsaar.net) (8.14.3/8.14.3) with ESMTP id mAM44xew022221\tfor <raasdnil@gmail.com>; Sat, 22 Nov 2008 15:05:01 +1100"], ["Message-Id", "<6B7EC235-5B17-4CA8-B2B8-39290DEB43A3@test.lindsaar.net>"], ["From", "Mikel Lindsaar <test@lindsaar.net>"], ["To", "Mikel Lindsaar <raasdnil@gmail.com>"], ["Content-Type", "text/plain; charset=US-ASCII; format=flowed"], ["Content-Transfer-Encoding", "7bit"], ["Mime-Version", "1.0 (Apple Message framework v929.2)"], ["Subject", "Testing 123"], ["Date", "Sat, 22 Nov 2008 15:04:59 +1100"], ["X-Mailer", "Apple Mail (2.929.2)"]]', '2008-11-22 04:04:59', NULL, '', '2026-12-07 19:01:11.765105', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (2, 2, 1, 'in', '', 'jdoe@machine.example', 'John Doe', '[{"name": "Mary Smith", "email": "mary@example.net"}]', '[]', '[]', 'Saying Hello', '1234@local.machine.example', NULL, '[]', 'This is a message just to say hello.
So, "Hello".', '', 'This is a message just to say hello.
So, "Hello".', '', '', '{"kind": "human", "reasons": []}', '[["From", "John Doe <jdoe@machine.example>"], ["To", "Mary Smith <mary@example.net>"], ["Subject", "Saying Hello"], ["Date", "Fri, 21 Nov 1997 09:55:06 -0600"], ["Message-ID", "<1234@local.machine.example>"]]', '1997-11-21 15:55:06', NULL, '', '2026-12-07 19:01:11.778147', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (3, 2, 1, 'in', '', 'mary@example.net', 'Mary Smith', '[{"name": "John Doe", "email": "jdoe@machine.example"}]', '[]', '[{"name": "Mary Smith: Personal Account", "email": "smith@home.example"}]', 'Re: Saying Hello', '3456@example.net', '1234@local.machine.example', '["1234@local.machine.example"]', 'This is a reply to your hello.', '', 'This is a reply to your hello.', '', '', '{"kind": "human", "reasons": []}', '[["From", "Mary Smith <mary@example.net>"], ["To", "John Doe <jdoe@machine.example>"], ["Reply-To", "\"Mary Smith: Personal Account\" <smith@home.example>"], ["Subject", "Re: Saying Hello"], ["Date", "Fri, 21 Nov 1997 10:01:10 -0600"], ["Message-ID", "<3456@example.net>"], ["In-Reply-To", "<1234@local.machine.example>"], ["References", "<1234@local.machine.example>"]]', '1997-11-21 16:01:10', NULL, '', '2026-12-07 19:01:11.787017', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (4, 3, 1, 'in', '', 'raasdnil@gmail.com', 'Mikel Lindsaar', '[{"name": "\u307f\u3051\u308b", "email": "raasdnil@gmail.com"}]', '[]', '[]', 'まみむめも', '930d93dc57f307b877162b0bc1d11cd6b285bc5b@derived.postroom.invalid', NULL, '[]', 'かきくえこ

-- 
http://lindsaar.net/
Rails, RSpec and Life blog....', '', 'かきくえこ', '-- 
http://lindsaar.net/
Rails, RSpec and Life blog....', '', '{"kind": "human", "reasons": []}', '[["MIME-Version", "1.0"], ["Subject", "\u307e\u307f\u3080\u3081\u3082"], ["From", "Mikel Lindsaar <raasdnil@gmail.com>"], ["To", "\u307f\u3051\u308b <raasdnil@gmail.com>"], ["Content-Type", "text/plain; charset=UTF-8"], ["Content-Transfer-Encoding", "base64"]]', '2026-12-07 19:01:09.001188', NULL, '', '2026-12-07 19:01:11.802874', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (5, 4, 1, 'in', '', 'xxxx@xxxx.com', 'Test Tester', '[{"name": "", "email": "xxxx@xxxx.com"}, {"name": "", "email": "xxxx@xxxx.com"}]', '[]', '[{"name": "Test Tester", "email": "xxxx@xxxx.com"}]', 'Another PDF with 🎉 Unicode chars in it 🍿', 'xxxx@xxxx.com', NULL, '[]', 'Just attaching another PDF, here, to see what the message looks like,
and to see if I can figure out what is going wrong here.', '', 'Just attaching another PDF, here, to see what the message looks like,
and to see if I can figure out what is going wrong here.', '', '', '{"kind": "human", "reasons": []}', '[["Return-Path", "<xxxx@xxxx.com>"], ["X-Original-To", "xxxx@xxxx.com"], ["Delivered-To", "xxxx@xxxx.com"], ["Received", "from localhost (localhost [127.0.0.1])\tby xxx.xxxxx.com (Postfix) with ESMTP id 50FD3A96F\tfor <xxxx@xxxx.com>; Tue, 10 May 2005 17:26:50 +0000 (GMT)"], ["Received", "from xxx.xxxxx.com ([127.0.0.1]) by localhost (xxx.xxxxx.com [127.0.0.1]) (amavisd-new, port 10024) with LMTP id 70060-03 for <xxxx@xxxx.com>; Tue, 10 May 2005 17:26:49 +0000 (GMT)"], ["Received", "from xxx.xxxxx.com (xxx.xxxxx.com [69.36.39.150])\tby xxx.xxxxx.com (Postfix) with ESMTP id 8B957A94B\tfor <xxxx@xxxx.com>; Tue, 10 May 2005 17:26:48 +0000 (GMT)"], ["Received", "from xxx.xxxxx.com (xxx.xxxxx.com [64.233.184.203])\tby xxx.xxxxx.com (Postfix) with ESMTP id 9972514824C\tfor <xxxx@xxxx.com>; Tue, 10 May 2005 12:26:40 -0500 (CDT)"], ["Received", "by xxx.xxxxx.com with SMTP id 68so1694448wri        for <xxxx@xxxx.com>; Tue, 10 May 2005 10:26:40 -0700 (PDT)"], ["DomainKey-Signature", "a=rsa-sha1; q=dns; c=nofws;        s=beta; d=xxxxx.com;        h=received:message-id:date:from:reply-to:to:subject:mime-version:content-type;        b=g8ZO5ttS6GPEMAz9WxrRk9+9IXBUfQIYsZLL6T88+ECbsXqGIgfGtzJJFn6o9CE3/HMrrIGkN5AisxVFTGXWxWci5YA/7PTVWwPOhJff5BRYQDVNgRKqMl/SMttNrrRElsGJjnD1UyQ/5kQmcBxq2PuZI5Zc47u6CILcuoBcM+A="], ["Received", "by 10.54.96.19 with SMTP id t19mr621017wrb;        Tue, 10 May 2005 10:26:39 -0700 (PDT)"], ["Received", "by 10.54.110.5 with HTTP; Tue, 10 May 2005 10:26:39 -0700 (PDT)"], ["Message-ID", "<xxxx@xxxx.com>"], ["Date", "Tue, 10 May 2005 11:26:39 -0600"], ["From", "Test Tester <xxxx@xxxx.com>"], ["Reply-To", "Test Tester <xxxx@xxxx.com>"], ["To", "xxxx@xxxx.com, xxxx@xxxx.com"], ["Subject", "Another PDF with \ud83c\udf89 Unicode chars in it \ud83c\udf7f"], ["Mime-Version", "1.0"], ["Content-Type", "multipart/mixed; \tboundary=\"----=_Part_2192_32400445.1115745999735\""], ["X-Virus-Scanned", "amavisd-new at textdrive.com"]]', '2005-05-10 17:26:39', NULL, '', '2026-12-07 19:01:11.807638', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (6, 5, 1, 'in', '', 'jamis@37signals.com', 'Jamis Buck', '[{"name": "", "email": "willard15georgina@jamis.backpackit.com"}]', '[]', '[]', 'NOTE: 한국말로 하는 것', 'd3b8cf8e49f04480850c28713a1f473e@37signals.com', NULL, '[]', '대부분의 마찬가지로, 우리는 하나님을 믿습니다.

제 이름은 Jamis입니다.', '', '대부분의 마찬가지로, 우리는 하나님을 믿습니다.

제 이름은 Jamis입니다.', '', '', '{"kind": "human", "reasons": []}', '[["Mime-Version", "1.0 (Apple Message framework v622)"], ["Content-Transfer-Encoding", "base64"], ["Message-Id", "<d3b8cf8e49f04480850c28713a1f473e@37signals.com>"], ["Content-Type", "text/plain;  charset=EUC-KR;  format=flowed"], ["To", "willard15georgina@jamis.backpackit.com"], ["From", "Jamis Buck <jamis@37signals.com>"], ["Subject", "NOTE: \ud55c\uad6d\ub9d0\ub85c \ud558\ub294 \uac83"], ["Date", "Mon, 2 May 2005 16:07:05 -0600"]]', '2005-05-02 22:07:05', NULL, '', '2026-12-07 19:01:11.826904', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (14, 6, 2, 'out', 'Bob', 'sales@acme.test', '', '[{"name": "Testing", "email": "xxxxxxxx@xxx.org"}]', '[]', '[]', 'Re: Test reply email', 'pr.t.6pwckmee3cu.oqwklctid4zwlrxwwhu4lpz6@acme.test', '473FFE27.20003@xxx.org', '["473FF3B8.9020707@xxx.org", "348F04F142D69C21-291E56D292BC@xxxx.net", "473FFE27.20003@xxx.org"]', 'We will call you.', '', 'We will call you.', '', '', '{}', '[]', NULL, 'queued', '', '2026-12-07 19:01:12.097183', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (7, 6, 2, 'in', '', 'xxxxxxxx@xxx.org', 'Testing', '[{"name": "Mikel Lindsaar", "email": "mikel@xxxx.net"}]', '[]', '[]', 'Re: Test reply email', '473FFE27.20003@xxx.org', '348F04F142D69C21-291E56D292BC@xxxx.net', '["473FF3B8.9020707@xxx.org", "348F04F142D69C21-291E56D292BC@xxxx.net"]', 'Message body', '', 'Message body', '', '', '{"kind": "human", "reasons": []}', '[["Return-Path", "<xxxxxxxx@xxx.org>"], ["Received", "from me ([unix socket])\t by xxxxx1.xxxx.net (Cyrus v2.2.12) with LMTPA;\t Sun, 18 Nov 2007 00:56:33 -0800"], ["Received", "from smtp.xxxx.org (unknown [127.0.0.1])\tby xxxxx1.xxxx.net (Postfix) with ESMTP id F128477EB5;\tSun, 18 Nov 2007 00:56:32 -0800 (PST)"], ["Received", "from omta02sl.mx.bigpond.com (omta02sl.mx.bigpond.com [144.140.93.154])\tby smtp.xxxx.org (Postfix) with ESMTP id 2D567ACC08;\tSun, 18 Nov 2007 00:56:28 -0800 (PST)"], ["Received", "from oaamta05sl.mx.bigpond.com ([124.183.219.10])          by omta02sl.mx.bigpond.com with ESMTP          id <20071118085627.YVPI22254.omta02sl.mx.bigpond.com@oaamta05sl.mx.bigpond.com>;          Sun, 18 Nov 2007 08:56:27 +0000"], ["Received", "from [10.0.0.1] (really [124.183.219.10])          by oaamta05sl.mx.bigpond.com with ESMTP          id <20071118085627.TQWF6995.oaamta05sl.mx.bigpond.com@[10.0.0.1]>;          Sun, 18 Nov 2007 08:56:27 +0000"], ["Message-ID", "<473FFE27.20003@xxx.org>"], ["Date", "Sun, 18 Nov 2007 19:56:07 +1100"], ["From", "Testing <xxxxxxxx@xxx.org>"], ["User-Agent", "Mozilla Thunderbird 1.0.6 (Windows/20050716)"], ["X-Accept-Language", "en-us, en"], ["MIME-Version", "1.0"], ["To", "Mikel Lindsaar <mikel@xxxx.net>"], ["Subject", "Re: Test reply email"], ["References", "<473FF3B8.9020707@xxx.org> <348F04F142D69C21-291E56D292BC@xxxx.net>"], ["In-Reply-To", "<348F04F142D69C21-291E56D292BC@xxxx.net>"], ["Content-Type", "text/plain; charset=US-ASCII; format=flowed"], ["Content-Transfer-Encoding", "7bit"]]', '2007-11-18 08:56:07', NULL, '', '2026-12-07 19:01:11.846234', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (8, 7, 2, 'in', '', 'i.kor@company.ru', '', '[{"name": "Jessica Schmidt", "email": "jessica.schmidt@uni.de"}, {"name": "Rabea.Bart\u00f6lke@uni.de", "email": "\u044f\u4f60Rabea.Bart\u00f6lke@uni.de"}]', '[]', '[]', 'статус    ', '2405271c-86ac-0a65-e50c-d1ebccfcc644@company.ru', '20171011085432.15374.20485@web.hades.company', '["20171011085432.15374.20485@web.hades.company"]', '
Новый заказ №28922 http://group.company.ru/ru/order/28922/process/
Создал: 
Клиент Ковчег (Гусев Дмитрий)

Сегменты:

- Москва - Тель-Авив, some-889, 15.03.2018, эконом: (15 взр.)

- Тель-Авив - Москва, some-890, 22.03.2018, эконом: (15 взр.)', '

    
    
    
        
        
    

    
    
    
        
        <a href="http://group.company.ru/ru/order/28922/process/" target="_blank" rel="noopener noreferrer nofollow">
            
            Новый заказ №28922
        </a><br>

        
        Создал:
        
            Клиент Ковчег
            (Гусев Дмитрий)
        <br><br>
        
        Сегменты: <br>
        <ul>
            
                <li>Москва - Тель-Авив, some-889, 15.03.2018, эконом: (15 взр.)</li>
            
                <li>Тель-Авив - Москва, some-890, 22.03.2018, эконом: (15 взр.)</li>
            
        </ul><br>
        
        
    

    
    

', '', '', 'Новый заказ №28922 http://group.company.ru/ru/order/28922/process/
Создал: 
Клиент Ковчег (Гусев Дмитрий)

Сегменты:

- Москва - Тель-Авив, some-889, 15.03.2018, эконом: (15 взр.)

- Тель-Авив - Москва, some-890, 22.03.2018, эконом: (15 взр.)', '{"kind": "human", "reasons": []}', '[["Return-Path", "i.kor@company.ru"], ["Received", "from m101.comp.ru (LHLO m101.comp.ru) (192.168.99.101) by m101.comp.ru with LMTP; Thu, 12 Oct 2017 09:41:57 +0500 (YEKT)"], ["Received", "from localhost (localhost [127.0.0.1])\tby m101.comp.ru (Postfix) with ESMTP id 555275B43;\tThu, 12 Oct 2017 09:41:57 +0500 (YEKT)"], ["X-Spam-Flag", "NO"], ["X-Spam-Score", "-2.898"], ["X-Spam-Level", ""], ["X-Spam-Status", "No, score=-2.898 required=6.6 tests=[ALL_TRUSTED=-1,\tBAYES_00=-1.9, HTML_MESSAGE=0.001, URIBL_BLOCKED=0.001]\tautolearn=ham autolearn_force=no"], ["Received", "from m101.comp.ru ([127.0.0.1])\tby localhost (m101.comp.ru [127.0.0.1]) (amavisd-new, port 10032)\twith ESMTP id rY6SAtl4piy1; Thu, 12 Oct 2017 09:41:56 +0500 (YEKT)"], ["Received", "from localhost (localhost [127.0.0.1])\tby m101.comp.ru (Postfix) with ESMTP id C8F0F5B4B;\tThu, 12 Oct 2017 09:41:56 +0500 (YEKT)"], ["X-Virus-Scanned", "amavisd-new at m101.comp.ru"], ["Received", "from m101.comp.ru ([127.0.0.1])\tby localhost (m101.comp.ru [127.0.0.1]) (amavisd-new, port 10026)\twith ESMTP id kq2wE_i9_8EK; Thu, 12 Oct 2017 09:41:56 +0500 (YEKT)"], ["Received", "from [192.168.104.80] (notebook26.hades.company [192.168.104.80])\tby m101.comp.ru (Postfix) with ESMTPSA id 9563A5B44\tfor <user@company.ru>; Thu, 12 Oct 2017 09:41:56 +0500 (YEKT)"], ["References", "<20171011085432.15374.20485@web.hades.company>"], ["Subject", "\u0441\u0442\u0430\u0442\u0443\u0441"], ["To", "Jessica Schmidt <jessica.schmidt@uni.de>,\tRabea.Bart\u00f6lke@uni.de <\u044f\u4f60Rabea.Bart\u00f6lke@uni.de>"], ["From", "i.kor@company.ru"], ["X-Forwarded-Message-Id", "<20171011085432.15374.20485@web.hades.company>"], ["Message-ID", "<2405271c-86ac-0a65-e50c-d1ebccfcc644@company.ru>"], ["Date", "Thu, 12 Oct 2017 09:41:56 +0500"], ["User-Agent", "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Thunderbird/52.4.0"], ["MIME-Version", "1.0"], ["In-Reply-To", "<20171011085432.15374.20485@web.hades.company>"], ["Content-Type", "multipart/mixed; boundary=\"------------BF90926EC9DF73443A6B8F28\""], ["Content-Language", "ru"]]', '2017-10-12 04:41:56', NULL, '', '2026-12-07 19:01:11.85533', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (9, 8, 3, 'in', '', 'atsushi@example.com', 'Atsushi Yoshida', '[{"name": "", "email": "rudeboyjet@gmail.com"}]', '[]', '[{"name": "", "email": "rudeboyjet@gmail.com"}]', 'Re: TEST	テストテスト', '0CC5E11ED2C1D@example.com', 'rid_5582199198@msgid.example.com', '[]', 'Hello', '', 'Hello', '', '', '{"kind": "human", "reasons": []}', '[["Return-Path", "<forwarder@acme.test>"], ["Received", "from [127.0.0.1] ([127.0.0.1])\tby vm (Postroom) with ESMTP id 336a015bcc93\tfor <a27eaf54255816010875a50d@inbound.acme.test>; Mon, 07 Dec 2026 19:01:09 +0000"], ["Date", "Fri, 19 Aug 2011 10:47:17 +0900"], ["From", "Atsushi Yoshida <atsushi@example.com>"], ["Reply-To", "rudeboyjet@gmail.com"], ["Subject", "Re: TEST\t\u30c6\u30b9\u30c8\u30c6\u30b9\u30c8"], ["To", "rudeboyjet@gmail.com"], ["Message-Id", "<0CC5E11ED2C1D@example.com>"], ["In-Reply-To", "<rid_5582199198@msgid.example.com>"], ["Mime-Version", "1.0"], ["Content-Type", "text/plain; charset=iso-2022-jp"], ["Content-Transfer-Encoding", "7bit"]]', '2011-08-19 01:47:17', NULL, '', '2026-12-07 19:01:11.864006', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (10, 9, 3, 'in', '', 'xxx@xxxx.xxx', '', '[{"name": "", "email": "xxx@xxxx.xxx"}]', '[]', '[]', 'Filth', '7864245.1115573412626.JavaMxxx@xxxx.xxx', NULL, '[]', 'Some text

--
This Orange Multi Media Message was sent wirefree from an Orange
MMS phone. If you would like to reply, please text or phone the
sender directly by using the phone number listed in the sender''s
address. To learn more about Orange''s Multi Media Messaging
Service, find us on the Web at xxx.xxxx.xxx.uk/mms


--mimepart_427e4cb4ca329_133ae40413c81ef-', '', 'Some text', '--
This Orange Multi Media Message was sent wirefree from an Orange
MMS phone. If you would like to reply, please text or phone the
sender directly by using the phone number listed in the sender''s
address. To learn more about Orange''s Multi Media Messaging
Service, find us on the Web at xxx.xxxx.xxx.uk/mms


--mimepart_427e4cb4ca329_133ae40413c81ef-', '', '{"kind": "human", "reasons": []}', '[["Return-Path", "<forwarder@acme.test>"], ["Received", "from [127.0.0.1] ([127.0.0.1])\tby vm (Postroom) with ESMTP id e98c2ec006c4\tfor <a27eaf54255816010875a50d@inbound.acme.test>; Mon, 07 Dec 2026 19:01:09 +0000"], ["Return-Path", "<xxx@xxxx.xxx>"], ["Received", "from xxx.xxxx.xxx by xxx.xxxx.xxx with ESMTP id 6AAEE3B4D23 for <xxx@xxxx.xxx>; Sun, 8 May 2005 12:30:23 -0500"], ["Received", "from xxx.xxxx.xxx by xxx.xxxx.xxx with ESMTP id j48HUC213279 for <xxx@xxxx.xxx>; Sun, 8 May 2005 12:30:13 -0500"], ["Received", "from conversion-xxx.xxxx.xxx.net by xxx.xxxx.xxx id <0IG600901LQ64I@xxx.xxxx.xxx> for <xxx@xxxx.xxx>; Sun, 8 May 2005 12:30:12 -0500"], ["Received", "from agw1 by xxx.xxxx.xxx with ESMTP id <0IG600JFYLYCAxxx@xxxx.xxx> for <xxx@xxxx.xxx>; Sun, 8 May 2005 12:30:12 -0500"], ["Date", "Sun, 8 May 2005 12:30:08 -0500"], ["From", "xxx@xxxx.xxx"], ["To", "xxx@xxxx.xxx"], ["Message-Id", "<7864245.1115573412626.JavaMxxx@xxxx.xxx>"], ["Subject", "Filth"], ["Mime-Version", "1.0"], ["Content-Type", "multipart/mixed; boundary=mimepart_427e4cb4ca329_133ae40413c81ef"], ["X-Mms-Priority", "1"], ["X-Mms-Transaction-Id", "3198421808-0"], ["X-Mms-Message-Type", "0"], ["X-Mms-Sender-Visibility", "1"], ["X-Mms-Read-Reply", "1"], ["X-Original-To", "xxx@xxxx.xxx"], ["X-Mms-Message-Class", "0"], ["X-Mms-Delivery-Report", "0"], ["X-Mms-Mms-Version", "16"], ["Delivered-To", "xxx@xxxx.xxx"], ["X-Nokia-Ag-Version", "2.0"]]', '2005-05-08 17:30:08', NULL, '', '2026-12-07 19:01:11.8727', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (11, 10, 4, 'in', '', 'jamis@37signals.com', 'Jamis Buck', '[{"name": "", "email": "jamis@37signals.com"}]', '[]', '[]', 'Re: Test: "漢字" mid "漢字" tail', 'd3b8cf8e49f04480850c28713a1f473e@37signals.com', NULL, '[]', '대부분의 마찬가지로, 우리는 하나님을 믿습니다.

제 이름은 Jamis입니다.', '', '대부분의 마찬가지로, 우리는 하나님을 믿습니다.

제 이름은 Jamis입니다.', '', '', '{"kind": "human", "reasons": []}', '[["Mime-Version", "1.0 (Apple Message framework v622)"], ["Content-Transfer-Encoding", "base64"], ["Message-Id", "<d3b8cf8e49f04480850c28713a1f473e@37signals.com>"], ["Content-Type", "text/plain;  charset=EUC-KR;  format=flowed"], ["To", "jamis@37signals.com"], ["From", "Jamis Buck <jamis@37signals.com>"], ["Subject", "Re: Test: \"\u6f22\u5b57\" mid \"\u6f22\u5b57\" tail"], ["Date", "Mon, 2 May 2005 16:07:05 -0600"]]', '2005-05-02 22:07:05', NULL, '', '2026-12-07 19:01:11.879896', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (15, 10, 4, 'out', 'admin (cli)', 'orders@acme.test', '', '[{"name": "Jamis Buck", "email": "jamis@37signals.com"}]', '[]', '[]', 'Re: Test: "漢字" mid "漢字" tail', 'pr.t.aqyw2e375zv.6iucmcowzht3lfrbvoiz5j7a@acme.test', 'd3b8cf8e49f04480850c28713a1f473e@37signals.com', '["d3b8cf8e49f04480850c28713a1f473e@37signals.com"]', 'Your order has shipped.', '', 'Your order has shipped.', '', '', '{}', '[]', '2026-12-07 19:01:12.432027', 'sent', '202 Accepted; X-Message-Id 8VnDfUTkbqEQ7223tksjVg', '2026-12-07 19:01:12.131027', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (13, 3, 1, 'out', 'admin (cli)', 'support@acme.test', 'Acme Support', '[{"name": "Mikel Lindsaar", "email": "raasdnil@gmail.com"}]', '[]', '[]', 'Re: まみむめも', 'pr.t.3cvi7kag5wp.kegmmp47knw5r55esgfyp4vz@acme.test', '930d93dc57f307b877162b0bc1d11cd6b285bc5b@derived.postroom.invalid', '["930d93dc57f307b877162b0bc1d11cd6b285bc5b@derived.postroom.invalid"]', 'はい、承知しました。', '', 'はい、承知しました。', '', '', '{}', '[]', NULL, 'failed', '550 5.1.1 SMTP support@acme.test: every recipient refused: raasdnil@gmail.com: 550 5.1.1 No such user here', '2026-12-07 19:01:12.065509', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (12, 2, 1, 'out', 'Alice', 'support@acme.test', 'Acme Support', '[{"name": "Mary Smith: Personal Account", "email": "smith@home.example"}]', '[]', '[]', 'Re: Saying Hello', 'pr.t.2edbq46ip2d.nab3kfooaaejd2bflr624bfk@acme.test', '3456@example.net', '["1234@local.machine.example", "3456@example.net"]', 'Hello to you too.', '', 'Hello to you too.', '', '', '{}', '[]', '2026-12-07 19:01:12.519209', 'sent', '250 2.0.0 OK: queued', '2026-12-07 19:01:11.988034', '');
INSERT INTO postroom_release_0004.messages (id, conversation_id, connection_id, direction, author, from_email, from_name, "to", cc, reply_to, subject, message_id, in_reply_to, "references", text, html, reply_text, signature, quoted_text, classification, headers, sent_at, delivery_status, delivery_detail, created_at, degraded_reason) VALUES (16, 11, 3, 'out', 'Carol', 'help@acme.test', '', '[{"name": "Erin Example", "email": "erin@customer.test"}]', '[]', '[{"name": "", "email": "help@acme.test"}]', 'Your renewal', 'pr.t.bqrgmbxyxod.mj2xepd4g43imo7cjoku3bhz@acme.test', NULL, '[]', 'Your subscription renews next week.', '', 'Your subscription renews next week.', '', '', '{}', '[]', '2026-12-07 19:01:12.546961', 'sent', '250 2.0.0 OK: queued', '2026-12-07 19:01:12.180751', '');


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.outbox (id, message_pk, connection_id, mailbox_id, raw, message_id, envelope_from, recipients, status, attempts, next_attempt_at, last_error, smtp_reply, claimed_by, claimed_until, created_at, sent_at, sent_copy, sent_copy_attempts, sent_copy_next_at, sent_copy_error, sent_copy_folder) VALUES (3, 14, 2, 3, '\x46726f6d3a2073616c65734061636d652e746573740d0a446174653a204d6f6e2c2030372044656320323032362031393a30313a3132202b303030300d0a5375626a6563743a2052653a2054657374207265706c7920656d61696c0d0a4d6573736167652d49443a203c70722e742e367077636b6d65653363752e6f71776b6c63746964347a776c727877776875346c707a364061636d652e746573743e0d0a546f3a2054657374696e67203c7878787878787878407878782e6f72673e0d0a496e2d5265706c792d546f3a203c34373346464532372e3230303033407878782e6f72673e0d0a5265666572656e6365733a203c34373346463342382e39303230373037407878782e6f72673e0d0a203c333438463034463134324436394332312d32393145353644323932424340787878782e6e65743e203c34373346464532372e3230303033407878782e6f72673e0d0a5468726561642d546f7069633a2054657374207265706c7920656d61696c0d0a5468726561642d496e6465783a204164324766564f41482f744730316d7a4538526742757a3545526f4533773d3d0d0a582d506f7374726f6f6d2d4c6f6f703a2073616c65734061636d652e746573740d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d227574662d38220d0a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650d0a0d0a57652077696c6c2063616c6c20796f752e0d0a', 'pr.t.6pwckmee3cu.oqwklctid4zwlrxwwhu4lpz6@acme.test', 'sales@acme.test', '["xxxxxxxx@xxx.org"]', 'queued', 0, '2026-12-07 20:01:12.097183', '', '', NULL, NULL, '2026-12-07 19:01:12.097183', NULL, NULL, 0, NULL, '', '');
INSERT INTO postroom_release_0004.outbox (id, message_pk, connection_id, mailbox_id, raw, message_id, envelope_from, recipients, status, attempts, next_attempt_at, last_error, smtp_reply, claimed_by, claimed_until, created_at, sent_at, sent_copy, sent_copy_attempts, sent_copy_next_at, sent_copy_error, sent_copy_folder) VALUES (4, 15, 4, 5, '\x46726f6d3a206f72646572734061636d652e746573740d0a446174653a204d6f6e2c2030372044656320323032362031393a30313a3132202b303030300d0a5375626a6563743a203d3f7574662d383f623f556d55364946526c6333513649434c6d764b4c6c725a6369494731705a43416935727969356132584969423059576c733f3d0d0a4d6573736167652d49443a203c70722e742e6171797732653337357a762e366975636d636f777a6874336c667262766f697a356a37614061636d652e746573743e0d0a546f3a204a616d6973204275636b203c6a616d69734033377369676e616c732e636f6d3e0d0a496e2d5265706c792d546f3a203c64336238636638653439663034343830383530633238373133613166343733654033377369676e616c732e636f6d3e0d0a5265666572656e6365733a203c64336238636638653439663034343830383530633238373133613166343733654033377369676e616c732e636f6d3e0d0a5468726561642d546f7069633a203d3f7574662d383f623f5647567a64446f67497561386f7557746c79496762576c6b49434c6d764b4c6c725a6369494852686157773d3f3d0d0a5468726561642d496e6465783a204164324766564f466e4c634b50564530754e6a446b616844344e372f59513d3d0d0a582d506f7374726f6f6d2d4c6f6f703a206f72646572734061636d652e746573740d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d227574662d38220d0a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650d0a0d0a596f7572206f726465722068617320736869707065642e0d0a', 'pr.t.aqyw2e375zv.6iucmcowzht3lfrbvoiz5j7a@acme.test', 'orders@acme.test', '["jamis@37signals.com"]', 'sent', 1, '2026-12-07 19:01:12.131027', '', '202 Accepted; X-Message-Id 8VnDfUTkbqEQ7223tksjVg', NULL, NULL, '2026-12-07 19:01:12.131027', '2026-12-07 19:01:12.432027', NULL, 0, NULL, '', '');
INSERT INTO postroom_release_0004.outbox (id, message_pk, connection_id, mailbox_id, raw, message_id, envelope_from, recipients, status, attempts, next_attempt_at, last_error, smtp_reply, claimed_by, claimed_until, created_at, sent_at, sent_copy, sent_copy_attempts, sent_copy_next_at, sent_copy_error, sent_copy_folder) VALUES (2, 13, 1, 1, '\x46726f6d3a2041636d6520537570706f7274203c737570706f72744061636d652e746573743e0d0a446174653a204d6f6e2c2030372044656320323032362031393a30313a3132202b303030300d0a5375626a6563743a203d3f7574662d383f623f556d5536494f4f4276754f42762b4f43674f4f4367654f4367673d3d3f3d0d0a4d6573736167652d49443a203c70722e742e33637669376b61673577702e6b65676d6d7034376b6e773572353565736766797034767a4061636d652e746573743e0d0a546f3a204d696b656c204c696e6473616172203c72616173646e696c40676d61696c2e636f6d3e0d0a496e2d5265706c792d546f3a203c3933306439336463353766333037623837373136326230626331643131636436623238356263356240646572697665642e706f7374726f6f6d2e696e76616c69643e0d0a5265666572656e6365733a203c3933306439336463353766333037623837373136326230626331643131636436623238356263356240646572697665642e706f7374726f6f6d2e696e76616c69643e0d0a5468726561642d546f7069633a203d3f7574662d383f623f3434472b3434472f34344b4134344b4234344b433f3d0d0a5468726561642d496e6465783a204164324766564e3739556875494262767a557543494b77417357306148413d3d0d0a582d506f7374726f6f6d2d4c6f6f703a20737570706f72744061636d652e746573740d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d227574662d38220d0a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650d0a0d0a3d45333d38313d41463d45333d38313d38343d45333d38303d38313d45363d38393d42463d45373d39463d41353d45333d38313d39373d45333d38313d42453d45333d38313d39373d45333d0d0a3d38313d39463d45333d38303d38320d0a0d0a2d2d3d32300d0a41636d6520537570706f72742c2041636d6520537570706f72740d0a', 'pr.t.3cvi7kag5wp.kegmmp47knw5r55esgfyp4vz@acme.test', 'support@acme.test', '["raasdnil@gmail.com"]', 'failed', 0, '2026-12-07 19:01:12.065509', '550 5.1.1 SMTP support@acme.test: every recipient refused: raasdnil@gmail.com: 550 5.1.1 No such user here', '', NULL, NULL, '2026-12-07 19:01:12.065509', NULL, NULL, 0, NULL, '', '');
INSERT INTO postroom_release_0004.outbox (id, message_pk, connection_id, mailbox_id, raw, message_id, envelope_from, recipients, status, attempts, next_attempt_at, last_error, smtp_reply, claimed_by, claimed_until, created_at, sent_at, sent_copy, sent_copy_attempts, sent_copy_next_at, sent_copy_error, sent_copy_folder) VALUES (1, 12, 1, 1, '\x46726f6d3a2041636d6520537570706f7274203c737570706f72744061636d652e746573743e0d0a446174653a204d6f6e2c2030372044656320323032362031393a30313a3131202b303030300d0a5375626a6563743a2052653a20536179696e672048656c6c6f0d0a4d6573736167652d49443a203c70722e742e32656462713436697032642e6e6162336b666f6f6161656a643262666c7236323462666b4061636d652e746573743e0d0a546f3a20224d61727920536d6974683a20506572736f6e616c204163636f756e7422203c736d69746840686f6d652e6578616d706c653e0d0a496e2d5265706c792d546f3a203c33343536406578616d706c652e6e65743e0d0a5265666572656e6365733a203c31323334406c6f63616c2e6d616368696e652e6578616d706c653e203c33343536406578616d706c652e6e65743e0d0a5468726561642d546f7069633a20536179696e672048656c6c6f0d0a5468726561642d496e6465783a204164324766564e774666534b59526a48586d6f7a39446f6d76346d756a413d3d0d0a582d506f7374726f6f6d2d4c6f6f703a20737570706f72744061636d652e746573740d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d227574662d38220d0a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650d0a0d0a48656c6c6f20746f20796f7520746f6f2e0d0a0d0a2d2d3d32300d0a416c6963652c2041636d6520537570706f72740d0a', 'pr.t.2edbq46ip2d.nab3kfooaaejd2bflr624bfk@acme.test', 'support@acme.test', '["smith@home.example"]', 'sent', 1, '2026-12-07 19:01:11.988034', '', '250 2.0.0 OK: queued', NULL, NULL, '2026-12-07 19:01:11.988034', '2026-12-07 19:01:12.519209', 'filed', 1, NULL, '', 'Sent Items');
INSERT INTO postroom_release_0004.outbox (id, message_pk, connection_id, mailbox_id, raw, message_id, envelope_from, recipients, status, attempts, next_attempt_at, last_error, smtp_reply, claimed_by, claimed_until, created_at, sent_at, sent_copy, sent_copy_attempts, sent_copy_next_at, sent_copy_error, sent_copy_folder) VALUES (5, 16, 3, 4, '\x46726f6d3a2068656c704061636d652e746573740d0a446174653a204d6f6e2c2030372044656320323032362031393a30313a3132202b303030300d0a5375626a6563743a20596f75722072656e6577616c0d0a4d6573736167652d49443a203c70722e742e627172676d627879786f642e6d6a327865706434673433696d6f37636a6f6b753362687a4061636d652e746573743e0d0a546f3a204572696e204578616d706c65203c6572696e40637573746f6d65722e746573743e0d0a5265706c792d546f3a2068656c704061636d652e746573740d0a5468726561642d546f7069633a20596f75722072656e6577616c0d0a5468726561642d496e6465783a204164324766564f4e796477574331735150656748526e73366b6e2f784d673d3d0d0a582d506f7374726f6f6d2d4c6f6f703a2068656c704061636d652e746573740d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d227574662d38220d0a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650d0a0d0a596f757220737562736372697074696f6e2072656e657773206e657874207765656b2e0d0a', 'pr.t.bqrgmbxyxod.mj2xepd4g43imo7cjoku3bhz@acme.test', 'help@acme.test', '["erin@customer.test"]', 'sent', 1, '2026-12-07 19:01:12.180751', '', '250 2.0.0 OK: queued', NULL, NULL, '2026-12-07 19:01:12.180751', '2026-12-07 19:01:12.546961', NULL, 0, NULL, '', '');


--
-- Data for Name: raw_bodies; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (1, '\x44656c6976657265642d546f3a2072616173646e696c40676d61696c2e636f6d0d0a52656365697665643a2062792031302e3134302e3137382e3133207769746820534d54502069642061313363733335343037397276663b0d0a20202020202020204672692c203231204e6f7620323030382032303a30353a3035202d303830302028505354290d0a52656365697665643a2062792031302e3135312e34342e3135207769746820534d5450206964207731356d723232353437343879626a2e39382e313232373332363730343731313b0d0a20202020202020204672692c203231204e6f7620323030382032303a30353a3034202d303830302028505354290d0a52657475726e2d506174683a203c74657374406c696e64736161722e6e65743e0d0a52656365697665643a2066726f6d206d61696c31312e747067692e636f6d2e617520286d61696c31312e747067692e636f6d2e6175205b3230332e31322e3136302e3136315d290d0a20202020202020206279206d782e676f6f676c652e636f6d20776974682045534d545020696420313073693531313738383567786b2e38312e323030382e31312e32312e32302e30352e30333b0d0a20202020202020204672692c203231204e6f7620323030382032303a30353a3034202d303830302028505354290d0a52656365697665642d5350463a206e65757472616c2028676f6f676c652e636f6d3a203230332e31322e3136302e313631206973206e656974686572207065726d6974746564206e6f722064656e69656420627920646f6d61696e206f662074657374406c696e64736161722e6e65742920636c69656e742d69703d3230332e31322e3136302e3136313b0d0a41757468656e7469636174696f6e2d526573756c74733a206d782e676f6f676c652e636f6d3b207370663d6e65757472616c2028676f6f676c652e636f6d3a203230332e31322e3136302e313631206973206e656974686572207065726d6974746564206e6f722064656e69656420627920646f6d61696e206f662074657374406c696e64736161722e6e65742920736d74702e6d61696c3d74657374406c696e64736161722e6e65740d0a582d5450472d4a756e6b2d5374617475733a204d657373616765206e6f74207363616e6e65640d0a582d5450472d416e746976697275733a205061737365640d0a52656365697665643a2066726f6d205b3139322e302e302e3235335d202836302d3234312d3133382d3134362e7374617469632e747067692e636f6d2e6175205b36302e302e302e3134365d290d0a096279206d61696c31312e747067692e636f6d2e61752028656e76656c6f70652d66726f6d2074657374406c696e64736161722e6e6574292028382e31342e332f382e31342e332920776974682045534d5450206964206d414d34347865773032323232310d0a09666f72203c72616173646e696c40676d61696c2e636f6d3e3b205361742c203232204e6f7620323030382031353a30353a3031202b313130300d0a4d6573736167652d49643a203c36423745433233352d354231372d344341382d423242382d33393239304445423433413340746573742e6c696e64736161722e6e65743e0d0a46726f6d3a204d696b656c204c696e6473616172203c74657374406c696e64736161722e6e65743e0d0a546f3a204d696b656c204c696e6473616172203c72616173646e696c40676d61696c2e636f6d3e0d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d55532d41534349493b20666f726d61743d666c6f7765640d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740d0a4d696d652d56657273696f6e3a20312e3020284170706c65204d657373616765206672616d65776f726b20763932392e32290d0a5375626a6563743a2054657374696e67203132330d0a446174653a205361742c203232204e6f7620323030382031353a30343a3539202b313130300d0a582d4d61696c65723a204170706c65204d61696c2028322e3932392e32290d0a0d0a506c61696e20656d61696c2e0d0a0d0a486f706520697420776f726b732077656c6c210d0a0d0a4d696b656c0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (2, '\x46726f6d3a204a6f686e20446f65203c6a646f65406d616368696e652e6578616d706c653e0d0a546f3a204d61727920536d697468203c6d617279406578616d706c652e6e65743e0d0a5375626a6563743a20536179696e672048656c6c6f0d0a446174653a204672692c203231204e6f7620313939372030393a35353a3036202d303630300d0a4d6573736167652d49443a203c31323334406c6f63616c2e6d616368696e652e6578616d706c653e0d0a0d0a546869732069732061206d657373616765206a75737420746f207361792068656c6c6f2e0d0a536f2c202248656c6c6f222e0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (3, '\x46726f6d3a204d61727920536d697468203c6d617279406578616d706c652e6e65743e0d0a546f3a204a6f686e20446f65203c6a646f65406d616368696e652e6578616d706c653e0d0a5265706c792d546f3a20224d61727920536d6974683a20506572736f6e616c204163636f756e7422203c736d69746840686f6d652e6578616d706c653e0d0a5375626a6563743a2052653a20536179696e672048656c6c6f0d0a446174653a204672692c203231204e6f7620313939372031303a30313a3130202d303630300d0a4d6573736167652d49443a203c33343536406578616d706c652e6e65743e0d0a496e2d5265706c792d546f3a203c31323334406c6f63616c2e6d616368696e652e6578616d706c653e0d0a5265666572656e6365733a203c31323334406c6f63616c2e6d616368696e652e6578616d706c653e0d0a0d0a546869732069732061207265706c7920746f20796f75722068656c6c6f2e0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (4, '\x4d494d452d56657273696f6e3a20312e300d0a5375626a6563743a203d3f5554462d383f423f3434472b3434472f34344b4134344b4234344b433f3d0d0a46726f6d3a204d696b656c204c696e6473616172203c72616173646e696c40676d61696c2e636f6d3e0d0a546f3a203d3f5554462d383f423f3434472f3434475234344b4c3f3d203c72616173646e696c40676d61696c2e636f6d3e0d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d5554462d380d0a436f6e74656e742d5472616e736665722d456e636f64696e673a206261736536340d0a0d0a3434474c3434474e34344750343447493434475443676f744c53414b6148523063446f764c327870626d527a595746794c6d356c6443384b556d467062484d7349464a546347566a494746750d0a5a43424d61575a6c49474a73623263754c69347543673d3d');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (5, '\x46726f6d207878787840787878782e636f6d20547565204d61792031302031313a32383a303720323030350d0a52657475726e2d506174683a203c7878787840787878782e636f6d3e0d0a582d4f726967696e616c2d546f3a207878787840787878782e636f6d0d0a44656c6976657265642d546f3a207878787840787878782e636f6d0d0a52656365697665643a2066726f6d206c6f63616c686f737420286c6f63616c686f7374205b3132372e302e302e315d290d0a096279207878782e78787878782e636f6d2028506f73746669782920776974682045534d5450206964203530464433413936460d0a09666f72203c7878787840787878782e636f6d3e3b205475652c203130204d617920323030352031373a32363a3530202b303030302028474d54290d0a52656365697665643a2066726f6d207878782e78787878782e636f6d20285b3132372e302e302e315d290d0a206279206c6f63616c686f737420287878782e78787878782e636f6d205b3132372e302e302e315d292028616d61766973642d6e65772c20706f7274203130303234290d0a2077697468204c4d54502069642037303036302d303320666f72203c7878787840787878782e636f6d3e3b0d0a205475652c203130204d617920323030352031373a32363a3439202b303030302028474d54290d0a52656365697665643a2066726f6d207878782e78787878782e636f6d20287878782e78787878782e636f6d205b36392e33362e33392e3135305d290d0a096279207878782e78787878782e636f6d2028506f73746669782920776974682045534d5450206964203842393537413934420d0a09666f72203c7878787840787878782e636f6d3e3b205475652c203130204d617920323030352031373a32363a3438202b303030302028474d54290d0a52656365697665643a2066726f6d207878782e78787878782e636f6d20287878782e78787878782e636f6d205b36342e3233332e3138342e3230335d290d0a096279207878782e78787878782e636f6d2028506f73746669782920776974682045534d54502069642039393732353134383234430d0a09666f72203c7878787840787878782e636f6d3e3b205475652c203130204d617920323030352031323a32363a3430202d303530302028434454290d0a52656365697665643a206279207878782e78787878782e636f6d207769746820534d5450206964203638736f313639343434387772690d0a2020202020202020666f72203c7878787840787878782e636f6d3e3b205475652c203130204d617920323030352031303a32363a3430202d303730302028504454290d0a446f6d61696e4b65792d5369676e61747572653a20613d7273612d736861313b20713d646e733b20633d6e6f6677733b0d0a2020202020202020733d626574613b20643d78787878782e636f6d3b0d0a2020202020202020683d72656365697665643a6d6573736167652d69643a646174653a66726f6d3a7265706c792d746f3a746f3a7375626a6563743a6d696d652d76657273696f6e3a636f6e74656e742d747970653b0d0a2020202020202020623d67385a4f35747453364750454d417a39577872526b392b394958425566514959735a4c4c365438382b4543627358714749676647747a4a4a466e366f394345332f484d727249476b4e3541697378564654475857785763693559412f375054565777504f684a6666354252595144564e67524b714d6c2f534d74744e727252456c73474a6a6e44315579512f356b516d634278713250755a49355a633437753643494c63756f42634d2b413d0d0a52656365697665643a2062792031302e35342e39362e3139207769746820534d5450206964207431396d723632313031377772623b0d0a20202020202020205475652c203130204d617920323030352031303a32363a3339202d303730302028504454290d0a52656365697665643a2062792031302e35342e3131302e35207769746820485454503b205475652c203130204d617920323030352031303a32363a3339202d303730302028504454290d0a4d6573736167652d49443a203c7878787840787878782e636f6d3e0d0a446174653a205475652c203130204d617920323030352031313a32363a3339202d303630300d0a46726f6d3a205465737420546573746572203c7878787840787878782e636f6d3e0d0a5265706c792d546f3a205465737420546573746572203c7878787840787878782e636f6d3e0d0a546f3a207878787840787878782e636f6d2c207878787840787878782e636f6d0d0a5375626a6563743a20416e6f7468657220504446207769746820f09f8e8920556e69636f646520636861727320696e20697420f09f8dbf0d0a4d696d652d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a206d756c7469706172742f6d697865643b200d0a09626f756e646172793d222d2d2d2d3d5f506172745f323139325f33323430303434352e31313135373435393939373335220d0a582d56697275732d5363616e6e65643a20616d61766973642d6e6577206174207465787464726976652e636f6d0d0a0d0a2d2d2d2d2d2d3d5f506172745f323139325f33323430303434352e313131353734353939393733350d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d49534f2d383835392d310d0a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650d0a436f6e74656e742d446973706f736974696f6e3a20696e6c696e650d0a0d0a4a75737420617474616368696e6720616e6f74686572205044462c20686572652c20746f20736565207768617420746865206d657373616765206c6f6f6b73206c696b652c0d0a616e6420746f2073656520696620492063616e20666967757265206f7574207768617420697320676f696e672077726f6e6720686572652e0d0a0d0a2d2d2d2d2d2d3d5f506172745f323139325f33323430303434352e313131353734353939393733350d0a436f6e74656e742d547970653a206170706c69636174696f6e2f7064663b206e616d653d2262726f6b656e2e706466220d0a436f6e74656e742d5472616e736665722d456e636f64696e673a206261736536340d0a436f6e74656e742d446973706f736974696f6e3a206174746163686d656e743b2066696c656e616d653d2262726f6b656e2e706466220d0a0d0a4a564245526930784c6a514e4369586b39747a6644516f784944416762324a7144516f3850434176544756755a33526f494449674d43425344516f6749434176526d6c7364475679494339470d0a624746305a55526c5932396b5a51304b506a344e436e4e30636d56686251304b654a79395774324b4a626b4e766d2f6f64366a72685a78596c6e396857456832702b384842764943795361450d0a79634c755456342f3169664a39716e7130394e705342696d753736794c5575792f717a7163507a372b656d334978782f4344633643735878733362352b6676666a722f3863507a362f4252750d0a72626641782f6e333733392f66754a796c4a357535666a5838314f7544723464654b34427a337a2f6144502b38667a3079773867304f6671376b7472314d6e2b753238727668792f6a5665440d0a5153612b39594e4b48502f70786a76444e665641782f6d334d467a35344668765462617365617869446f4e324c654d564d772b7941375262485343447a785a756159423245315961793751550d0a783839767a302b747946444b4d6c41484b3579714c6d6e6a462b6334526a4569514955654b77626c584d652b41735a6a4e314a357947514c3544487044486b7375724d3831724636504b61620d0a674b367a41617249447a496955593233724a734e39696f724145383136614975366c736741645146737568686b484f554667566a7032476a4d715365774954584e5132376a724d65616d6b670d0a3172504933694c5747324349615342422b5631323435595652494347626270594b486332555346446c364d3039616351565159686c7749726b424e4c4953765868476c4631776935464843770d0a77785a6b6f474e4a6c56654a434573714b412b3359415635414d62364b6b656171454a516d464b4b515538543170526932696845315934434472716f59464658596a4a4a4f617473797a75490d0a3853496c796b75784b544d6962574b384831506745767159677334476d515372456a4a41616c674769724968696b2b70345a514e394533455446504148453162387070316c2f30526331676c0d0a6651733041425776796f5a5a7a5538566e5058775656634f39424573796a454a614f3665426f5a52794b476c724b6f596f4f796741384247497a67774e33525131356f756967473569645a510d0a66783255344462324371694c4f305748415a6f796c4769434171686e694e516a466a5150536b6d6a77664e546751364d3149682b65576f333677466d6a4978444a5a694755426957734179520d0a78583345656b474f697a6b474939364f6c397a565a54416976696b555268527348683245334a68574d7053545a436e6e6f6e724c684d436f6467724e63676f3475794a554a6336716e5673730d0a6e724764315074723059776973434f597949625577566a56347842554e4c626775534f325948756a6f6e414d4a6b4d645349376249773931416b713241556c4d55574746544d414f616d6a550d0a4f765a514378496b59327043704d466f2f49774c64564c4873366e646477545272676f5662764c55396542304734454d6e645630544e6f78486274334a4257774b36686876336948664474460d0a796f6b4233303249704542546e5749436465347559632f316b68446253496b516f704f366c6371616d474275314f5345334e35495053735a583030436b5348526969797836485149536873530d0a4853564e7377645673614f55534157713961596844744744616f473561336c42476b59742f6c466c42467431557172596e7a5674557055516e4c695a656f754b6766314b685242566952526b0d0a457865704a437a5477456d4644616c4952624c454774773067667045534f704941462f4e6e70507a635643473836733067324475537964343175684e476245676153725745584f52457262770d0a2d2d2d2d2d2d3d5f506172745f323139325f33323430303434352e313131353734353939393733352d2d0d0a0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (6, '\x44656c6976657265642d546f3a2072616173646e696c40676d61696c2e636f6d0d0a52656365697665643a2062792031302e3134302e3137382e3133207769746820534d54502069642061313363733335343037397276663b0d0a20202020202020204672692c203231204e6f7620323030382032303a30353a3035202d303830302028505354290d0a52656365697665643a2062792031302e3135312e34342e3135207769746820534d5450206964207731356d723232353437343879626a2e39382e313232373332363730343731313b0d0a20202020202020204672692c203231204e6f7620323030382032303a30353a3034202d303830302028505354290d0a52657475726e2d506174683a203c74657374406c696e64736161722e6e65743e0d0a52656365697665643a2066726f6d206d61696c31312e747067692e636f6d2e617520286d61696c31312e747067692e636f6d2e6175205b3230332e31322e3136302e3136315d290d0a20202020202020206279206d782e676f6f676c652e636f6d20776974682045534d545020696420313073693531313738383567786b2e38312e323030382e31312e32312e32302e30352e30333b0d0a20202020202020204672692c203231204e6f7620323030382032303a30353a3034202d303830302028505354290d0a52656365697665642d5350463a206e65757472616c2028676f6f676c652e636f6d3a203230332e31322e3136302e313631206973206e656974686572207065726d6974746564206e6f722064656e69656420627920646f6d61696e206f662074657374406c696e64736161722e6e65742920636c69656e742d69703d3230332e31322e3136302e3136313b0d0a41757468656e7469636174696f6e2d526573756c74733a206d782e676f6f676c652e636f6d3b207370663d6e65757472616c2028676f6f676c652e636f6d3a203230332e31322e3136302e313631206973206e656974686572207065726d6974746564206e6f722064656e69656420627920646f6d61696e206f662074657374406c696e64736161722e6e65742920736d74702e6d61696c3d74657374406c696e64736161722e6e65740d0a582d5450472d4a756e6b2d5374617475733a204d657373616765206e6f74207363616e6e65640d0a582d5450472d416e746976697275733a205061737365640d0a52656365697665643a2066726f6d205b3139322e302e302e3235335d202836302d3234312d3133382d3134362e7374617469632e747067692e636f6d2e6175205b36302e302e302e3134365d290d0a096279206d61696c31312e747067692e636f6d2e61752028656e76656c6f70652d66726f6d2074657374406c696e64736161722e6e6574292028382e31342e332f382e31342e332920776974682045534d5450206964206d414d34347865773032323232310d0a09666f72203c72616173646e696c40676d61696c2e636f6d3e3b205361742c203232204e6f7620323030382031353a30353a3031202b313130300d0a4d6573736167652d49643a203c36423745433233352d354231372d344341382d423242382d33393239304445423433413340746573742e6c696e64736161722e6e65743e0d0a46726f6d3a204d696b656c204c696e6473616172203c74657374406c696e64736161722e6e65743e0d0a546f3a204d696b656c204c696e6473616172203c72616173646e696c40676d61696c2e636f6d3e0d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d55532d41534349493b20666f726d61743d666c6f7765640d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740d0a4d696d652d56657273696f6e3a20312e3020284170706c65204d657373616765206672616d65776f726b20763932392e32290d0a5375626a6563743a2054657374696e67203132330d0a446174653a205361742c203232204e6f7620323030382031353a30343a3539202b313130300d0a582d4d61696c65723a204170706c65204d61696c2028322e3932392e32290d0a0d0a506c61696e20656d61696c2e0d0a0d0a486f706520697420776f726b732077656c6c210d0a0d0a4d696b656c0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (7, '\x46726f6d206a616d69735f6275636b406279752e656475204d6f6e204d61792020322031363a30373a303520323030350d0a4d696d652d56657273696f6e3a20312e3020284170706c65204d657373616765206672616d65776f726b2076363232290d0a436f6e74656e742d5472616e736665722d456e636f64696e673a206261736536340d0a4d6573736167652d49643a203c64336238636638653439663034343830383530633238373133613166343733654033377369676e616c732e636f6d3e0d0a436f6e74656e742d547970653a20746578742f706c61696e3b0d0a2020636861727365743d4555432d4b523b0d0a2020666f726d61743d666c6f7765640d0a546f3a2077696c6c617264313567656f7267696e61406a616d69732e6261636b7061636b69742e636f6d0d0a46726f6d3a204a616d6973204275636b203c6a616d69734033377369676e616c732e636f6d3e0d0a5375626a6563743a203d3f4555432d4b523f513f4e4f54453a5f3d43373d44313d42313d42393d42383d42423d42373d43455f3d43373d43463d42343d43325f3d42303d43443f3d0d0a446174653a204d6f6e2c2032204d617920323030352031363a30373a3035202d303630300d0a0d0a744f75367a727251774d6367754c62432b624368776661337a697767762b793472725443494d665073367130314d4337494c6e50766343307a37545a4c67304b44517242706944417a4c696e0d0a774c6f67536d467461585041314c5450744e6b750d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (8, '\x52657475726e2d506174683a203c7878787878787878407878782e6f72673e0d0a52656365697665643a2066726f6d206d6520285b756e697820736f636b65745d290d0a09206279207878787878312e787878782e6e6574202843797275732076322e322e3132292077697468204c4d5450413b0d0a092053756e2c203138204e6f7620323030372030303a35363a3333202d303830300d0a52656365697665643a2066726f6d20736d74702e787878782e6f72672028756e6b6e6f776e205b3132372e302e302e315d290d0a096279207878787878312e787878782e6e65742028506f73746669782920776974682045534d545020696420463132383437374542353b0d0a0953756e2c203138204e6f7620323030372030303a35363a3332202d303830302028505354290d0a52656365697665643a2066726f6d206f6d74613032736c2e6d782e626967706f6e642e636f6d20286f6d74613032736c2e6d782e626967706f6e642e636f6d205b3134342e3134302e39332e3135345d290d0a09627920736d74702e787878782e6f72672028506f73746669782920776974682045534d545020696420324435363741434330383b0d0a0953756e2c203138204e6f7620323030372030303a35363a3238202d303830302028505354290d0a52656365697665643a2066726f6d206f61616d74613035736c2e6d782e626967706f6e642e636f6d20285b3132342e3138332e3231392e31305d290d0a202020202020202020206279206f6d74613032736c2e6d782e626967706f6e642e636f6d20776974682045534d54500d0a202020202020202020206964203c32303037313131383038353632372e5956504932323235342e6f6d74613032736c2e6d782e626967706f6e642e636f6d406f61616d74613035736c2e6d782e626967706f6e642e636f6d3e3b0d0a2020202020202020202053756e2c203138204e6f7620323030372030383a35363a3237202b303030300d0a52656365697665643a2066726f6d205b31302e302e302e315d20287265616c6c79205b3132342e3138332e3231392e31305d290d0a202020202020202020206279206f61616d74613035736c2e6d782e626967706f6e642e636f6d20776974682045534d54500d0a202020202020202020206964203c32303037313131383038353632372e54515746363939352e6f61616d74613035736c2e6d782e626967706f6e642e636f6d405b31302e302e302e315d3e3b0d0a2020202020202020202053756e2c203138204e6f7620323030372030383a35363a3237202b303030300d0a4d6573736167652d49443a203c34373346464532372e3230303033407878782e6f72673e0d0a446174653a2053756e2c203138204e6f7620323030372031393a35363a3037202b313130300d0a46726f6d3a2054657374696e67203c7878787878787878407878782e6f72673e0d0a557365722d4167656e743a204d6f7a696c6c61205468756e6465726269726420312e302e36202857696e646f77732f3230303530373136290d0a582d4163636570742d4c616e67756167653a20656e2d75732c20656e0d0a4d494d452d56657273696f6e3a20312e300d0a546f3a204d696b656c204c696e6473616172203c6d696b656c40787878782e6e65743e0d0a5375626a6563743a2052653a2054657374207265706c7920656d61696c0d0a5265666572656e6365733a203c34373346463342382e39303230373037407878782e6f72673e203c333438463034463134324436394332312d32393145353644323932424340787878782e6e65743e0d0a496e2d5265706c792d546f3a203c333438463034463134324436394332312d32393145353644323932424340787878782e6e65743e0d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d55532d41534349493b20666f726d61743d666c6f7765640d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740d0a0d0a4d65737361676520626f64790d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (9, '\x52657475726e2d506174683a20692e6b6f7240636f6d70616e792e72750a52656365697665643a2066726f6d206d3130312e636f6d702e727520284c484c4f206d3130312e636f6d702e72752920283139322e3136382e39392e31303129206279206d3130312e636f6d702e72750a2077697468204c4d54503b205468752c203132204f637420323031372030393a34313a3537202b30353030202859454b54290a52656365697665643a2066726f6d206c6f63616c686f737420286c6f63616c686f7374205b3132372e302e302e315d290a096279206d3130312e636f6d702e72752028506f73746669782920776974682045534d5450206964203535353237354234333b0a095468752c203132204f637420323031372030393a34313a3537202b30353030202859454b54290a582d5370616d2d466c61673a204e4f0a582d5370616d2d53636f72653a202d322e3839380a582d5370616d2d4c6576656c3a200a582d5370616d2d5374617475733a204e6f2c2073636f72653d2d322e3839382072657175697265643d362e362074657374733d5b414c4c5f545255535445443d2d312c0a0942415945535f30303d2d312e392c2048544d4c5f4d4553534147453d302e3030312c20555249424c5f424c4f434b45443d302e3030315d0a096175746f6c6561726e3d68616d206175746f6c6561726e5f666f7263653d6e6f0a52656365697665643a2066726f6d206d3130312e636f6d702e727520285b3132372e302e302e315d290a096279206c6f63616c686f737420286d3130312e636f6d702e7275205b3132372e302e302e315d292028616d61766973642d6e65772c20706f7274203130303332290a09776974682045534d5450206964207259365341746c34706979313b205468752c203132204f637420323031372030393a34313a3536202b30353030202859454b54290a52656365697665643a2066726f6d206c6f63616c686f737420286c6f63616c686f7374205b3132372e302e302e315d290a096279206d3130312e636f6d702e72752028506f73746669782920776974682045534d5450206964204338463046354234423b0a095468752c203132204f637420323031372030393a34313a3536202b30353030202859454b54290a582d56697275732d5363616e6e65643a20616d61766973642d6e6577206174206d3130312e636f6d702e72750a52656365697665643a2066726f6d206d3130312e636f6d702e727520285b3132372e302e302e315d290a096279206c6f63616c686f737420286d3130312e636f6d702e7275205b3132372e302e302e315d292028616d61766973642d6e65772c20706f7274203130303236290a09776974682045534d5450206964206b713277455f69395f38454b3b205468752c203132204f637420323031372030393a34313a3536202b30353030202859454b54290a52656365697665643a2066726f6d205b3139322e3136382e3130342e38305d20286e6f7465626f6f6b32362e68616465732e636f6d70616e79205b3139322e3136382e3130342e38305d290a096279206d3130312e636f6d702e72752028506f73746669782920776974682045534d54505341206964203935363341354234340a09666f72203c7573657240636f6d70616e792e72753e3b205468752c203132204f637420323031372030393a34313a3536202b30353030202859454b54290a5265666572656e6365733a203c32303137313031313038353433322e31353337342e3230343835407765622e68616465732e636f6d70616e793e0a5375626a6563743a203d3f5554462d383f423f305948526774437730594c52673947423f3d202020200a546f3a204a657373696361205363686d696474203c6a6573736963612e7363686d69647440756e692e64653e2c0a093d3f69736f2d383835392d313f513f52616265613d3245426172743d46366c6b653d3430756e693d324564653f3d203cd18fe4bda052616265612e42617274c3b66c6b6540756e692e64653e0a46726f6d3a20692e6b6f7240636f6d70616e792e72750a582d466f727761726465642d4d6573736167652d49643a203c32303137313031313038353433322e31353337342e3230343835407765622e68616465732e636f6d70616e793e0a4d6573736167652d49443a203c32343035323731632d383661632d306136352d653530632d64316562636366636336343440636f6d70616e792e72753e0a446174653a205468752c203132204f637420323031372030393a34313a3536202b303530300a557365722d4167656e743a204d6f7a696c6c612f352e30202857696e646f7773204e5420362e313b20574f5736343b2072763a35322e3029204765636b6f2f32303130303130310a205468756e646572626972642f35322e342e300a4d494d452d56657273696f6e3a20312e300a496e2d5265706c792d546f3a203c32303137313031313038353433322e31353337342e3230343835407765622e68616465732e636f6d70616e793e0a436f6e74656e742d547970653a206d756c7469706172742f6d697865643b0a20626f756e646172793d222d2d2d2d2d2d2d2d2d2d2d2d424639303932364543394446373334343341364238463238220a436f6e74656e742d4c616e67756167653a2072750a0a546869732069732061206d756c74692d70617274206d65737361676520696e204d494d4520666f726d61742e0a2d2d2d2d2d2d2d2d2d2d2d2d2d2d4246393039323645433944463733343433413642384632380a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d383b20666f726d61743d666c6f7765640a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740a0a0a0a2d2d2d2d2d2d2d2d2d2d2d2d2d2d4246393039323645433944463733343433413642384632380a436f6e74656e742d547970653a206d6573736167652f7266633832323b0a206e616d653d224d65737361676530312e656d6c220a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740a436f6e74656e742d446973706f736974696f6e3a206174746163686d656e743b0a2066696c656e616d653d223d3f7574662d383f513f436f6e74726163745f3f3d323520303420323032302e646f6378220a0a52657475726e2d506174683a2067726f757040636f6d70616e792e72750a52656365697665643a2066726f6d206d3130312e636f6d702e727520284c484c4f206d3130312e636f6d702e72752920283139322e3136382e39392e31303129206279206d3130312e636f6d702e72750a2077697468204c4d54503b205765642c203131204f637420323031372031333a35343a3333202b30353030202859454b54290a52656365697665643a2066726f6d206c6f63616c686f737420286c6f63616c686f7374205b3132372e302e302e315d290a096279206d3130312e636f6d702e72752028506f73746669782920776974682045534d54502069642030344244453645333b0a095765642c203131204f637420323031372031333a35343a3333202b30353030202859454b54290a582d5370616d2d466c61673a204e4f0a582d5370616d2d53636f72653a202d322e3839390a582d5370616d2d4c6576656c3a200a582d5370616d2d5374617475733a204e6f2c2073636f72653d2d322e3839392072657175697265643d362e362074657374733d5b414c4c5f545255535445443d2d312c0a0942415945535f30303d2d312e392c2048544d4c5f4d4553534147453d302e3030312c2052505f4d4154434845535f524356443d2d302e3030312c0a09555249424c5f424c4f434b45443d302e3030315d206175746f6c6561726e3d68616d206175746f6c6561726e5f666f7263653d6e6f0a52656365697665643a2066726f6d206d3130312e636f6d702e727520285b3132372e302e302e315d290a096279206c6f63616c686f737420286d3130312e636f6d702e7275205b3132372e302e302e315d292028616d61766973642d6e65772c20706f7274203130303332290a09776974682045534d545020696420334e33585675537732336c543b205765642c203131204f637420323031372031333a35343a3332202b30353030202859454b54290a52656365697665643a2066726f6d206c6f63616c686f737420286c6f63616c686f7374205b3132372e302e302e315d290a096279206d3130312e636f6d702e72752028506f73746669782920776974682045534d54502069642038334442353645363b0a095765642c203131204f637420323031372031333a35343a3332202b30353030202859454b54290a582d56697275732d5363616e6e65643a20616d61766973642d6e6577206174206d3130312e636f6d702e72750a52656365697665643a2066726f6d206d3130312e636f6d702e727520285b3132372e302e302e315d290a096279206c6f63616c686f737420286d3130312e636f6d702e7275205b3132372e302e302e315d292028616d61766973642d6e65772c20706f7274203130303236290a09776974682045534d545020696420796c557a2d33627045595f353b205765642c203131204f637420323031372031333a35343a3332202b30353030202859454b54290a52656365697665643a2066726f6d207765622e68616465732e636f6d70616e792028733139322d3136382d39392d3130382e736f6d652e7275205b3139322e3136382e39392e3130385d290a096279206d3130312e636f6d702e72752028506f73746669782920776974682045534d545053412069642035414536353645333b0a095765642c203131204f637420323031372031333a35343a3332202b30353030202859454b54290a436f6e74656e742d547970653a206d756c7469706172742f616c7465726e61746976653b0a20626f756e646172793d223d3d3d3d3d3d3d3d3d3d3d3d3d3d3d333639333133323837393539313838383833363d3d220a4d494d452d56657273696f6e3a20312e300a5375626a6563743a203d3f5554462d383f423f305948526774437730594c52673947423f3d202020200a46726f6d3a2067726f757040636f6d70616e792e72750a546f3a2067726f757040636f6d70616e792e72750a446174653a205765642c203131204f637420323031372030383a35343a3332202d303030300a4d6573736167652d49443a203c32303137313031313038353433322e31353337342e3230343835407765622e68616465732e636f6d70616e793e0a0a2d2d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d333639333133323837393539313838383833363d3d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d227574662d38220a4d494d452d56657273696f6e3a20312e300a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650a0a3d44303d39443d44303d42453d44303d42323d44313d38423d44303d4239203d44303d42373d44303d42303d44303d42413d44303d42303d44303d4237203d45323d38343d393632383d0a39323220687474703a2f2f67726f75702e636f6d70616e792e72752f72752f6f726465722f32383932322f70726f636573732f0a3d44303d41313d44303d42453d44303d42373d44303d42343d44303d42303d44303d42423a3d32300a3d44303d39413d44303d42423d44303d42383d44303d42353d44303d42443d44313d3832203d44303d39413d44303d42453d44303d42323d44313d38373d44303d42353d44303d42333d0a20283d44303d39333d44313d38333d44313d38313d44303d42353d44303d4232203d44303d39343d44303d42433d44303d42383d44313d38323d44313d38303d44303d42383d44303d42393d0a290a0a3d44303d41313d44303d42353d44303d42333d44303d42433d44303d42353d44303d42443d44313d38323d44313d38423a0a0a2d203d44303d39433d44303d42453d44313d38313d44303d42413d44303d42323d44303d4230202d203d44303d41323d44303d42353d44303d42423d44313d38432d3d44303d39303d44303d0a3d42323d44303d42383d44303d42322c20736f6d652d3838392c2031352e30332e323031382c203d44313d38443d44303d42413d44303d42453d44303d42443d44303d42453d44303d42433d0a3a20283135203d44303d42323d44303d42373d44313d38302e290a0a2d203d44303d41323d44303d42353d44303d42423d44313d38432d3d44303d39303d44303d42323d44303d42383d44303d4232202d203d44303d39433d44303d42453d44313d38313d44303d0a3d42413d44303d42323d44303d42302c20736f6d652d3839302c2032322e30332e323031382c203d44313d38443d44303d42413d44303d42453d44303d42443d44303d42453d44303d42433d0a3a20283135203d44303d42323d44303d42373d44313d38302e290a2d2d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d333639333133323837393539313838383833363d3d0a436f6e74656e742d547970653a20746578742f68746d6c3b20636861727365743d227574662d38220a4d494d452d56657273696f6e3a20312e300a436f6e74656e742d5472616e736665722d456e636f64696e673a2071756f7465642d7072696e7461626c650a0a0a0a202020203c21444f43545950452068746d6c205055424c494320272d2f2f5733432f2f445444205848544d4c20312e30205374726963742f2f454e272027687474703a2f2f7777772e3d0a77332e6f72672f54522f7868746d6c312f4454442f7868746d6c312d7374726963742e647464273e0a202020203c68746d6c20786d6c6e733d334427687474703a2f2f7777772e77332e6f72672f313939392f7868746d6c27206c616e673d33442772752d7275270a20202020202020202020786d6c3a6c616e673d334427656e2d7573273e0a202020203c686561643e0a20202020202020203c6d65746120636f6e74656e743d334422746578742f68746d6c3b20636861727365743d33445554462d382220687474702d65717569763d334422436f6e74656e3d0a742d54797065223e0a202020202020203d32300a202020203c2f686561643e0a0a202020203c626f64792069643d334427626f6479273e0a2020203d32300a2020203d32300a202020202020203d32300a20202020202020203c6120687265663d334422687474703a2f2f67726f75702e636f6d70616e792e72752f72752f6f726465722f32383932322f70726f636573732f223e0a20202020202020202020203d32300a2020202020202020202020203d44303d39443d44303d42453d44303d42323d44313d38423d44303d4239203d44303d42373d44303d42303d44303d42413d44303d42303d44303d42373d0a203d45323d38343d393632383932320a20202020202020203c2f613e3c62723e0a0a202020202020203d32300a20202020202020203d44303d41313d44303d42453d44303d42373d44303d42343d44303d42303d44303d42423a0a202020202020203d32300a2020202020202020202020203d44303d39413d44303d42423d44303d42383d44303d42353d44303d42443d44313d3832203d44303d39413d44303d42453d44303d42323d44313d38373d0a3d44303d42353d44303d42330a202020202020202020202020283d44303d39333d44313d38333d44313d38313d44303d42353d44303d4232203d44303d39343d44303d42433d44303d42383d44313d38323d44313d38303d0a3d44303d42383d44303d4239290a20202020202020203c62723e3c62723e0a202020202020203d32300a20202020202020203d44303d41313d44303d42353d44303d42333d44303d42433d44303d42353d44303d42443d44313d38323d44313d38423a203c62723e0a20202020202020203c756c3e0a20202020202020202020203d32300a202020202020202020202020202020203c6c693e3d44303d39433d44303d42453d44313d38313d44303d42413d44303d42323d44303d4230202d203d44303d41323d44303d42353d44303d0a3d42423d44313d38432d3d44303d39303d44303d42323d44303d42383d44303d42322c20736f6d652d3838392c2031352e30332e323031382c203d44313d38443d44303d42413d44303d42453d0a3d44303d42443d44303d42453d44303d42433a20283135203d44303d42323d44303d42373d44313d38302e293c2f6c693e0a20202020202020202020203d32300a202020202020202020202020202020203c6c693e3d44303d41323d44303d42353d44303d42423d44313d38432d3d44303d39303d44303d42323d44303d42383d44303d4232202d203d44303d0a3d39433d44303d42453d44313d38313d44303d42413d44303d42323d44303d42302c20736f6d652d3839302c2032322e30332e323031382c203d44313d38443d44303d42413d44303d42453d0a3d44303d42443d44303d42453d44303d42433a20283135203d44303d42323d44303d42373d44313d38302e293c2f6c693e0a20202020202020202020203d32300a20202020202020203c2f756c3e3c62723e0a202020202020203d32300a202020202020203d32300a2020203d32300a0a202020203c2f626f64793e0a202020203c2f68746d6c3e0a0a0a2d2d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d333639333133323837393539313838383833363d3d2d2d0a0a2d2d2d2d2d2d2d2d2d2d2d2d2d2d4246393039323645433944463733343433413642384632382d2d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (10, '\x000120746865736520627974657320617265206e6f742061206d61696c0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (11, '\x52657475726e2d506174683a203c666f727761726465724061636d652e746573743e0d0a52656365697665643a2066726f6d205b3132372e302e302e315d20285b3132372e302e302e315d290d0a09627920766d2028506f7374726f6f6d2920776974682045534d5450206964203333366130313562636339330d0a09666f72203c61323765616635343235353831363031303837356135306440696e626f756e642e61636d652e746573743e3b204d6f6e2c2030372044656320323032362031393a30313a3039202b303030300d0a46726f6d2074657374406578616d706c652e636f6d20204d6f6e204175672032322030393a34353a313520323031310d0a446174653a204672692c2031392041756720323031312031303a34373a3137202b303930300d0a46726f6d3a204174737573686920596f7368696461203c61747375736869406578616d706c652e636f6d3e0d0a5265706c792d546f3a2072756465626f796a657440676d61696c2e636f6d0d0a5375626a6563743a2052653a20544553540d0a200d0a093d3f49534f2d323032322d4a503f423f477952434a55596c4f535649477968433f3d0d0a20203d3f49534f2d323032322d4a503f423f477952434a55596c4f535649477968433f3d0d0a546f3a2072756465626f796a657440676d61696c2e636f6d0d0a4d6573736167652d49643a203c30434335453131454432433144406578616d706c652e636f6d3e0d0a496e2d5265706c792d546f3a203c7269645f35353832313939313938406d736769642e6578616d706c652e636f6d3e0d0a4d696d652d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d69736f2d323032322d6a700d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740d0a0d0a48656c6c6f0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (13, '\x52657475726e2d506174683a203c736f6d656f6e6540656c736577686572652e746573743e0d0a52656365697665643a2066726f6d205b3132372e302e302e315d20285b3132372e302e302e315d290d0a09627920766d2028506f7374726f6f6d2920776974682045534d5450206964203366323336623031363063310d0a09666f72203c706f73746d617374657240696e626f756e642e61636d652e746573743e3b204d6f6e2c2030372044656320323032362031393a30313a3039202b303030300d0a46726f6d3a204a6f686e20446f65203c6a646f65406d616368696e652e6578616d706c653e0d0a546f3a204d61727920536d697468203c6d617279406578616d706c652e6e65743e0d0a5375626a6563743a20536179696e672048656c6c6f0d0a446174653a204672692c203231204e6f7620313939372030393a35353a3036202d303630300d0a4d6573736167652d49443a203c31323334406c6f63616c2e6d616368696e652e6578616d706c653e0d0a0d0a546869732069732061206d657373616765206a75737420746f207361792068656c6c6f2e0d0a536f2c202248656c6c6f222e0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (12, '\x52657475726e2d506174683a203c666f727761726465724061636d652e746573743e0d0a52656365697665643a2066726f6d205b3132372e302e302e315d20285b3132372e302e302e315d290d0a09627920766d2028506f7374726f6f6d2920776974682045534d5450206964206539386332656330303663340d0a09666f72203c61323765616635343235353831363031303837356135306440696e626f756e642e61636d652e746573743e3b204d6f6e2c2030372044656320323032362031393a30313a3039202b303030300d0a52657475726e2d506174683a203c78787840787878782e7878783e0d0a52656365697665643a2066726f6d207878782e787878782e787878206279207878782e787878782e78787820776974682045534d545020696420364141454533423444323320666f72203c78787840787878782e7878783e3b2053756e2c2038204d617920323030352031323a33303a3233202d303530300d0a52656365697665643a2066726f6d207878782e787878782e787878206279207878782e787878782e78787820776974682045534d5450206964206a343848554332313332373920666f72203c78787840787878782e7878783e3b2053756e2c2038204d617920323030352031323a33303a3133202d303530300d0a52656365697665643a2066726f6d20636f6e76657273696f6e2d7878782e787878782e7878782e6e6574206279207878782e787878782e787878206964203c3049473630303930314c51363449407878782e787878782e7878783e20666f72203c78787840787878782e7878783e3b2053756e2c2038204d617920323030352031323a33303a3132202d303530300d0a52656365697665643a2066726f6d2061677731206279207878782e787878782e78787820776974682045534d5450206964203c3049473630304a46594c59434178787840787878782e7878783e20666f72203c78787840787878782e7878783e3b2053756e2c2038204d617920323030352031323a33303a3132202d303530300d0a446174653a2053756e2c2038204d617920323030352031323a33303a3038202d303530300d0a46726f6d3a2078787840787878782e7878780d0a546f3a2078787840787878782e7878780d0a4d6573736167652d49643a203c373836343234352e313131353537333431323632362e4a6176614d78787840787878782e7878783e0d0a5375626a6563743a2046696c74680d0a4d696d652d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a206d756c7469706172742f6d697865643b20626f756e646172793d6d696d65706172745f343237653463623463613332395f3133336165343034313363383165660d0a582d4d6d732d5072696f726974793a20310d0a582d4d6d732d5472616e73616374696f6e2d49643a20333139383432313830382d300d0a582d4d6d732d4d6573736167652d547970653a20300d0a582d4d6d732d53656e6465722d5669736962696c6974793a20310d0a582d4d6d732d526561642d5265706c793a20310d0a582d4f726967696e616c2d546f3a2078787840787878782e7878780d0a582d4d6d732d4d6573736167652d436c6173733a20300d0a582d4d6d732d44656c69766572792d5265706f72743a20300d0a582d4d6d732d4d6d732d56657273696f6e3a2031360d0a44656c6976657265642d546f3a2078787840787878782e7878780d0a582d4e6f6b69612d41672d56657273696f6e3a20322e300d0a0d0a546869732069732061206d756c74692d70617274206d65737361676520696e204d494d4520666f726d61742e0d0a0d0a2d2d6d696d65706172745f343237653463623463613332395f3133336165343034313363383165660d0a436f6e74656e742d547970653a206d756c7469706172742f6d697865643b20626f756e646172793d6d696d65706172745f343237653463623463626439375f3133336165343034313363383231370d0a0d0a0d0a0d0a2d2d6d696d65706172745f343237653463623463626439375f3133336165343034313363383231370d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740d0a436f6e74656e742d446973706f736974696f6e3a20696e6c696e650d0a436f6e74656e742d4c6f636174696f6e3a20746578742e7478740d0a0d0a536f6d6520746578740d0a0d0a2d2d6d696d65706172745f343237653463623463626439375f3133336165343034313363383231372d2d0d0a0d0a2d2d6d696d65706172745f343237653463623463613332395f3133336165343034313363383165660d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d75732d61736369690d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20376269740d0a0d0a0d0a2d2d0d0a54686973204f72616e6765204d756c7469204d65646961204d657373616765207761732073656e742077697265667265652066726f6d20616e204f72616e67650d0a4d4d532070686f6e652e20496620796f7520776f756c64206c696b6520746f207265706c792c20706c656173652074657874206f722070686f6e65207468650d0a73656e646572206469726563746c79206279207573696e67207468652070686f6e65206e756d626572206c697374656420696e207468652073656e64657227730d0a616464726573732e20546f206c6561726e206d6f72652061626f7574204f72616e67652773204d756c7469204d65646961204d6573736167696e670d0a536572766963652c2066696e64207573206f6e2074686520576562206174207878782e787878782e7878782e756b2f6d6d730d0a0d0a0d0a2d2d6d696d65706172745f343237653463623463613332395f3133336165343034313363383165660d0a0d0a0d0a2d2d6d696d65706172745f343237653463623463613332395f3133336165343034313363383165662d0d0a0d0a');
INSERT INTO postroom_release_0004.raw_bodies (raw_id, data) VALUES (14, '\x46726f6d206a616d69734033377369676e616c732e636f6d204d6f6e204d61792020322031363a30373a303520323030350d0a4d696d652d56657273696f6e3a20312e3020284170706c65204d657373616765206672616d65776f726b2076363232290d0a436f6e74656e742d5472616e736665722d456e636f64696e673a206261736536340d0a4d6573736167652d49643a203c64336238636638653439663034343830383530633238373133613166343733654033377369676e616c732e636f6d3e0d0a436f6e74656e742d547970653a20746578742f706c61696e3b0d0a2020636861727365743d4555432d4b523b0d0a2020666f726d61743d666c6f7765640d0a546f3a206a616d69734033377369676e616c732e636f6d0d0a46726f6d3a204a616d6973204275636b203c6a616d69734033377369676e616c732e636f6d3e0d0a5375626a6563743a2052653a20546573743a203d3f5554462d383f423f497561386f7557746c79493d3f3d206d6964203d3f5554462d383f423f497561386f7557746c79493d3f3d207461696c0d0a446174653a204d6f6e2c2032204d617920323030352031363a30373a3035202d303630300d0a0d0a744f75367a727251774d6367754c62432b624368776661337a697767762b793472725443494d665073367130314d4337494c6e50766343307a37545a4c67304b44517242706944417a4c696e0d0a774c6f67536d467461585041314c5450744e6b750d0a');


--
-- Data for Name: raw_messages; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (13, NULL, NULL, 'postmaster:mid:1234@local.machine.example', 'smtp', '1234@local.machine.example', 429, '2026-12-07 19:01:09.165853', 'ignored', 'mail to postmaster (RFC 5321 §4.5.1): kept for the admin, not made a conversation', 0, NULL, NULL, NULL, NULL);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (1, 1, 1, 'imap:1700000000:101', 'imap', '6B7EC235-5B17-4CA8-B2B8-39290DEB43A3@test.lindsaar.net', 1550, '2026-12-07 19:01:09.001188', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.773169', 1);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (2, 1, 1, 'imap:1700000000:102', 'imap', '1234@local.machine.example', 232, '2026-12-07 19:01:09.001188', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.779382', 2);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (3, 1, 1, 'imap:1700000000:103', 'imap', '3456@example.net', 354, '2026-12-07 19:01:09.001188', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.798139', 3);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (4, 1, 1, 'imap:1700000000:104', 'imap', NULL, 336, '2026-12-07 19:01:09.001188', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.80409', 4);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (5, 1, 1, 'imap:1700000000:105', 'imap', 'xxxx@xxxx.com', 3819, '2026-12-07 19:01:09.001188', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.817533', 5);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (6, 1, 1, 'imap:1700000000:200', 'imap', '6B7EC235-5B17-4CA8-B2B8-39290DEB43A3@test.lindsaar.net', 1550, '2026-12-07 19:01:09.001188', 'duplicate', 'Message-ID <6B7EC235-5B17-4CA8-B2B8-39290DEB43A3@test.lindsaar.net> already imported as message 1', 1, NULL, NULL, '2026-12-07 19:01:11.821106', NULL);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (7, 1, 2, 'imap:1700000000:101', 'imap', 'd3b8cf8e49f04480850c28713a1f473e@37signals.com', 558, '2026-12-07 19:01:09.036472', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.829184', 6);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (8, 2, 3, 'pop3:uidl-plain_emails-raw_email_reply', 'pop3', '473FFE27.20003@xxx.org', 1480, '2026-12-07 19:01:09.05808', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.848012', 7);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (9, 2, 3, 'pop3:uidl-attachment_7bit', 'pop3', '2405271c-86ac-0a65-e50c-d1ebccfcc644@company.ru', 6406, '2026-12-07 19:01:09.05808', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.8577', 8);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (10, 2, 3, 'pop3:uidl-not-a-mail', 'pop3', NULL, 31, '2026-12-07 19:01:09.05808', 'quarantined', 'parse: not an email: no header fields found', 1, NULL, NULL, '2026-12-07 19:01:11.858655', NULL);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (11, 3, 4, 'mid:0CC5E11ED2C1D@example.com', 'smtp', '0CC5E11ED2C1D@example.com', 694, '2026-12-07 19:01:09.11176', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.866241', 9);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (12, 3, 4, 'mid:7864245.1115573412626.JavaMxxx@xxxx.xxx', 'smtp', '7864245.1115573412626.JavaMxxx@xxxx.xxx', 2228, '2026-12-07 19:01:09.139665', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.874768', 10);
INSERT INTO postroom_release_0004.raw_messages (id, connection_id, mailbox_id, dedupe_key, origin, header_message_id, size, received_at, status, error, attempts, claimed_by, claimed_until, processed_at, message_pk) VALUES (14, 4, 5, 'mid:d3b8cf8e49f04480850c28713a1f473e@37signals.com', 'webhook', 'd3b8cf8e49f04480850c28713a1f473e@37signals.com', 545, '2026-12-07 19:01:09.238202', 'done', '', 1, NULL, NULL, '2026-12-07 19:01:11.881268', 11);


--
-- Data for Name: webhook_replays; Type: TABLE DATA; Schema: postroom_release_0004; Owner: -
--

INSERT INTO postroom_release_0004.webhook_replays (key, seen_at) VALUES ('mailgun:fixture-token-0-5f1a616881f0458888cc7669b07d1b44', '2026-12-07 19:01:09.228343');


--
-- Name: api_tokens_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.api_tokens_id_seq', 4, true);


--
-- Name: attachments_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.attachments_id_seq', 2, true);


--
-- Name: connection_logs_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.connection_logs_id_seq', 5, true);


--
-- Name: connections_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.connections_id_seq', 4, true);


--
-- Name: contacts_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.contacts_id_seq', 11, true);


--
-- Name: conversations_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.conversations_id_seq', 11, true);


--
-- Name: customer_domains_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.customer_domains_id_seq', 1, false);


--
-- Name: customers_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.customers_id_seq', 1, false);


--
-- Name: mailboxes_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.mailboxes_id_seq', 5, true);


--
-- Name: messages_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.messages_id_seq', 16, true);


--
-- Name: outbox_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.outbox_id_seq', 5, true);


--
-- Name: raw_messages_id_seq; Type: SEQUENCE SET; Schema: postroom_release_0004; Owner: -
--

SELECT pg_catalog.setval('postroom_release_0004.raw_messages_id_seq', 14, true);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: api_tokens pk_api_tokens; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.api_tokens
    ADD CONSTRAINT pk_api_tokens PRIMARY KEY (id);


--
-- Name: attachments pk_attachments; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.attachments
    ADD CONSTRAINT pk_attachments PRIMARY KEY (id);


--
-- Name: connection_logs pk_connection_logs; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connection_logs
    ADD CONSTRAINT pk_connection_logs PRIMARY KEY (id);


--
-- Name: connections pk_connections; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connections
    ADD CONSTRAINT pk_connections PRIMARY KEY (id);


--
-- Name: contacts pk_contacts; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.contacts
    ADD CONSTRAINT pk_contacts PRIMARY KEY (id);


--
-- Name: conversations pk_conversations; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.conversations
    ADD CONSTRAINT pk_conversations PRIMARY KEY (id);


--
-- Name: customer_domains pk_customer_domains; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.customer_domains
    ADD CONSTRAINT pk_customer_domains PRIMARY KEY (id);


--
-- Name: customers pk_customers; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.customers
    ADD CONSTRAINT pk_customers PRIMARY KEY (id);


--
-- Name: leases pk_leases; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.leases
    ADD CONSTRAINT pk_leases PRIMARY KEY (name);


--
-- Name: mailboxes pk_mailboxes; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.mailboxes
    ADD CONSTRAINT pk_mailboxes PRIMARY KEY (id);


--
-- Name: messages pk_messages; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.messages
    ADD CONSTRAINT pk_messages PRIMARY KEY (id);


--
-- Name: outbox pk_outbox; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.outbox
    ADD CONSTRAINT pk_outbox PRIMARY KEY (id);


--
-- Name: raw_bodies pk_raw_bodies; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_bodies
    ADD CONSTRAINT pk_raw_bodies PRIMARY KEY (raw_id);


--
-- Name: raw_messages pk_raw_messages; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_messages
    ADD CONSTRAINT pk_raw_messages PRIMARY KEY (id);


--
-- Name: webhook_replays pk_webhook_replays; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.webhook_replays
    ADD CONSTRAINT pk_webhook_replays PRIMARY KEY (key);


--
-- Name: api_tokens uq_api_tokens_token_sha256; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.api_tokens
    ADD CONSTRAINT uq_api_tokens_token_sha256 UNIQUE (token_sha256);


--
-- Name: connections uq_connections_inbound_key; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connections
    ADD CONSTRAINT uq_connections_inbound_key UNIQUE (inbound_key);


--
-- Name: connections uq_connections_name; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connections
    ADD CONSTRAINT uq_connections_name UNIQUE (name);


--
-- Name: contacts uq_contacts_email; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.contacts
    ADD CONSTRAINT uq_contacts_email UNIQUE (email);


--
-- Name: customer_domains uq_customer_domains_domain; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.customer_domains
    ADD CONSTRAINT uq_customer_domains_domain UNIQUE (domain);


--
-- Name: mailboxes uq_mailboxes_connection_id; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.mailboxes
    ADD CONSTRAINT uq_mailboxes_connection_id UNIQUE (connection_id, "position");


--
-- Name: outbox uq_outbox_message_pk; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.outbox
    ADD CONSTRAINT uq_outbox_message_pk UNIQUE (message_pk);


--
-- Name: raw_messages uq_raw_messages_mailbox_id; Type: CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_messages
    ADD CONSTRAINT uq_raw_messages_mailbox_id UNIQUE (mailbox_id, dedupe_key);


--
-- Name: ix_attachments_message_pk; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_attachments_message_pk ON postroom_release_0004.attachments USING btree (message_pk);


--
-- Name: ix_connection_logs_conn_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_connection_logs_conn_id ON postroom_release_0004.connection_logs USING btree (connection_id, id);


--
-- Name: ix_contacts_customer_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_contacts_customer_id ON postroom_release_0004.contacts USING btree (customer_id);


--
-- Name: ix_conversations_connection_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_conversations_connection_id ON postroom_release_0004.conversations USING btree (connection_id);


--
-- Name: ix_conversations_contact_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_conversations_contact_id ON postroom_release_0004.conversations USING btree (contact_id);


--
-- Name: ix_conversations_customer_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_conversations_customer_id ON postroom_release_0004.conversations USING btree (customer_id);


--
-- Name: ix_conversations_lookup; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_conversations_lookup ON postroom_release_0004.conversations USING btree (mailbox_id, contact_id, status);


--
-- Name: ix_customer_domains_customer_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_customer_domains_customer_id ON postroom_release_0004.customer_domains USING btree (customer_id);


--
-- Name: ix_mailboxes_address; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_mailboxes_address ON postroom_release_0004.mailboxes USING btree (address);


--
-- Name: ix_mailboxes_connection_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_mailboxes_connection_id ON postroom_release_0004.mailboxes USING btree (connection_id);


--
-- Name: ix_messages_conversation_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_messages_conversation_id ON postroom_release_0004.messages USING btree (conversation_id);


--
-- Name: ix_messages_rfc_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_messages_rfc_id ON postroom_release_0004.messages USING btree (message_id);


--
-- Name: ix_outbox_connection_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_outbox_connection_id ON postroom_release_0004.outbox USING btree (connection_id);


--
-- Name: ix_outbox_due; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_outbox_due ON postroom_release_0004.outbox USING btree (status, next_attempt_at);


--
-- Name: ix_outbox_sent_copy_due; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_outbox_sent_copy_due ON postroom_release_0004.outbox USING btree (sent_copy, sent_copy_next_at);


--
-- Name: ix_raw_messages_connection_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_raw_messages_connection_id ON postroom_release_0004.raw_messages USING btree (connection_id);


--
-- Name: ix_raw_messages_header_message_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_raw_messages_header_message_id ON postroom_release_0004.raw_messages USING btree (header_message_id);


--
-- Name: ix_raw_messages_status_id; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_raw_messages_status_id ON postroom_release_0004.raw_messages USING btree (status, id);


--
-- Name: ix_webhook_replays_seen_at; Type: INDEX; Schema: postroom_release_0004; Owner: -
--

CREATE INDEX ix_webhook_replays_seen_at ON postroom_release_0004.webhook_replays USING btree (seen_at);


--
-- Name: attachments fk_attachments_message_pk_messages; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.attachments
    ADD CONSTRAINT fk_attachments_message_pk_messages FOREIGN KEY (message_pk) REFERENCES postroom_release_0004.messages(id) ON DELETE CASCADE;


--
-- Name: connection_logs fk_connection_logs_connection_id_connections; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.connection_logs
    ADD CONSTRAINT fk_connection_logs_connection_id_connections FOREIGN KEY (connection_id) REFERENCES postroom_release_0004.connections(id) ON DELETE CASCADE;


--
-- Name: contacts fk_contacts_customer_id_customers; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.contacts
    ADD CONSTRAINT fk_contacts_customer_id_customers FOREIGN KEY (customer_id) REFERENCES postroom_release_0004.customers(id) ON DELETE SET NULL;


--
-- Name: conversations fk_conversations_connection_id_connections; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.conversations
    ADD CONSTRAINT fk_conversations_connection_id_connections FOREIGN KEY (connection_id) REFERENCES postroom_release_0004.connections(id) ON DELETE SET NULL;


--
-- Name: conversations fk_conversations_contact_id_contacts; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.conversations
    ADD CONSTRAINT fk_conversations_contact_id_contacts FOREIGN KEY (contact_id) REFERENCES postroom_release_0004.contacts(id) ON DELETE SET NULL;


--
-- Name: conversations fk_conversations_customer_id_customers; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.conversations
    ADD CONSTRAINT fk_conversations_customer_id_customers FOREIGN KEY (customer_id) REFERENCES postroom_release_0004.customers(id) ON DELETE SET NULL;


--
-- Name: conversations fk_conversations_mailbox_id_mailboxes; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.conversations
    ADD CONSTRAINT fk_conversations_mailbox_id_mailboxes FOREIGN KEY (mailbox_id) REFERENCES postroom_release_0004.mailboxes(id) ON DELETE SET NULL;


--
-- Name: customer_domains fk_customer_domains_customer_id_customers; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.customer_domains
    ADD CONSTRAINT fk_customer_domains_customer_id_customers FOREIGN KEY (customer_id) REFERENCES postroom_release_0004.customers(id) ON DELETE CASCADE;


--
-- Name: mailboxes fk_mailboxes_connection_id_connections; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.mailboxes
    ADD CONSTRAINT fk_mailboxes_connection_id_connections FOREIGN KEY (connection_id) REFERENCES postroom_release_0004.connections(id) ON DELETE CASCADE;


--
-- Name: messages fk_messages_connection_id_connections; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.messages
    ADD CONSTRAINT fk_messages_connection_id_connections FOREIGN KEY (connection_id) REFERENCES postroom_release_0004.connections(id) ON DELETE SET NULL;


--
-- Name: messages fk_messages_conversation_id_conversations; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.messages
    ADD CONSTRAINT fk_messages_conversation_id_conversations FOREIGN KEY (conversation_id) REFERENCES postroom_release_0004.conversations(id) ON DELETE CASCADE;


--
-- Name: outbox fk_outbox_connection_id_connections; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.outbox
    ADD CONSTRAINT fk_outbox_connection_id_connections FOREIGN KEY (connection_id) REFERENCES postroom_release_0004.connections(id) ON DELETE SET NULL;


--
-- Name: outbox fk_outbox_mailbox_id_mailboxes; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.outbox
    ADD CONSTRAINT fk_outbox_mailbox_id_mailboxes FOREIGN KEY (mailbox_id) REFERENCES postroom_release_0004.mailboxes(id) ON DELETE SET NULL;


--
-- Name: outbox fk_outbox_message_pk_messages; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.outbox
    ADD CONSTRAINT fk_outbox_message_pk_messages FOREIGN KEY (message_pk) REFERENCES postroom_release_0004.messages(id) ON DELETE SET NULL;


--
-- Name: raw_bodies fk_raw_bodies_raw_id_raw_messages; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_bodies
    ADD CONSTRAINT fk_raw_bodies_raw_id_raw_messages FOREIGN KEY (raw_id) REFERENCES postroom_release_0004.raw_messages(id) ON DELETE CASCADE;


--
-- Name: raw_messages fk_raw_messages_connection_id_connections; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_messages
    ADD CONSTRAINT fk_raw_messages_connection_id_connections FOREIGN KEY (connection_id) REFERENCES postroom_release_0004.connections(id) ON DELETE SET NULL;


--
-- Name: raw_messages fk_raw_messages_mailbox_id_mailboxes; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_messages
    ADD CONSTRAINT fk_raw_messages_mailbox_id_mailboxes FOREIGN KEY (mailbox_id) REFERENCES postroom_release_0004.mailboxes(id) ON DELETE SET NULL;


--
-- Name: raw_messages fk_raw_messages_message_pk_messages; Type: FK CONSTRAINT; Schema: postroom_release_0004; Owner: -
--

ALTER TABLE ONLY postroom_release_0004.raw_messages
    ADD CONSTRAINT fk_raw_messages_message_pk_messages FOREIGN KEY (message_pk) REFERENCES postroom_release_0004.messages(id) ON DELETE SET NULL;


--
-- PostgreSQL database dump complete
--

\unrestrict mjbygkqMUQ8YhjRHdD4rwoDblSwcjtpbSagelhlHQhD1cNH9OUEmn63DUWCmP0P

