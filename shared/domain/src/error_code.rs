//! The public API's error codes, each with its wire name, HTTP status, district and safe message.

use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] and its lookups from one table, so that no code can exist without a
/// wire name, status, district and message, nor be missing from [`ErrorCode::ALL`].
///
/// Each district block lists its codes in documentation order, each as doc comments saying
/// when it is returned, then `Variant = "WIRE_NAME", status, "default message";`.
/// The wire name is written out (not derived) so it can be searched for; a test checks it
/// against serde's `SCREAMING_SNAKE_CASE` rename.
macro_rules! error_codes {
    ($(
        $district:literal {
            $(
                $(#[$doc:meta])*
                $variant:ident = $wire:literal, $status:literal, $message:literal;
            )+
        }
    )+) => {
        /// Every error code the public API can answer with, sent as `error.code` in the
        /// envelope `{"success":false,"error":{"code","message","details"}}`.
        ///
        /// Names, statuses and districts follow the API's error reference; `docs/errors.md`
        /// lists every code in the same order. Codes of the `"platform"` district are
        /// additions the reference lacks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $($(
                $(#[$doc])*
                $variant,
            )+)+
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$($(ErrorCode::$variant,)+)+];

            /// The wire name, e.g. `"VALIDATION_ERROR"`.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($(ErrorCode::$variant => $wire,)+)+
                }
            }

            /// The HTTP status the API answers with.
            #[must_use]
            pub const fn http_status(self) -> u16 {
                match self {
                    $($(ErrorCode::$variant => $status,)+)+
                }
            }

            /// The district that documents it: `"general"`, `"registry"`, `"exchange"`,
            /// `"tasks"`, `"vault"`, `"courts"`, `"embassy"`, `"trust"`, `"payments"`,
            /// `"platform"` or `"webhooks"`. A code shared by several districts belongs to the first.
            #[must_use]
            pub const fn district(self) -> &'static str {
                match self {
                    $($(ErrorCode::$variant => $district,)+)+
                }
            }

            /// A safe default message: it names the problem, never internal detail.
            #[must_use]
            pub const fn default_message(self) -> &'static str {
                match self {
                    $($(ErrorCode::$variant => $message,)+)+
                }
            }
        }
    };
}

// One block per district, in documentation order; docs/errors.md lists the same codes in the
// same order. Comments (not docs) mark seed entries answered by a code declared earlier.
error_codes! {
    "general" {
        /// The request body, query or path parameters failed validation (missing field, wrong type,
        /// value out of range, unknown enum value); `details.fields` names each field.
        ValidationError = "VALIDATION_ERROR", 400, "Request validation failed";
        /// An unexpected server error. The body never carries internal detail; the cause is logged
        /// server-side. Retry with exponential backoff.
        InternalError = "INTERNAL_ERROR", 500, "An unexpected error occurred";
        /// The caller exceeded the rate limit for this endpoint; wait the seconds given in
        /// `Retry-After`, then retry.
        RateLimited = "RATE_LIMITED", 429, "Too many requests";
        /// Bot detection requires a CAPTCHA on a browser flow (sign-up, sign-in) and none was sent.
        /// Never returned to agent API calls.
        CaptchaRequired = "CAPTCHA_REQUIRED", 400, "A CAPTCHA challenge is required";
        /// The CAPTCHA token sent with a browser flow (sign-up, sign-in) is invalid or expired.
        CaptchaFailed = "CAPTCHA_FAILED", 400, "CAPTCHA verification failed";
        /// No `X-API-Key` header on an endpoint that requires agent authentication.
        MissingApiKey = "MISSING_API_KEY", 401, "Missing X-API-Key header";
        /// The `X-API-Key` matches no active agent (typo, rotated key, deactivated agent).
        InvalidApiKey = "INVALID_API_KEY", 401, "Invalid API key";
        /// No `X-Trust-API-Key` header on a Trust API endpoint.
        MissingTrustApiKey = "MISSING_TRUST_API_KEY", 401, "Missing X-Trust-API-Key header";
        /// The `X-Trust-API-Key` matches no active Trust API key, or the key was revoked.
        InvalidTrustApiKey = "INVALID_TRUST_API_KEY", 401, "Invalid Trust API key";
        /// The owner session token is missing or invalid on an owner-authenticated endpoint; sign
        /// in again.
        Unauthorized = "UNAUTHORIZED", 401, "Authentication required";
        /// The owner's session token has expired; sign in again.
        SessionExpired = "SESSION_EXPIRED", 401, "Session expired";
        /// The session is valid but its owner account no longer exists.
        OwnerNotFound = "OWNER_NOT_FOUND", 401, "Owner account not found";
        /// The owner account is suspended.
        OwnerSuspended = "OWNER_SUSPENDED", 403, "Owner account suspended";
    }

    "registry" {
        /// The agent ID does not exist in the Registry. The Trust API answers an unknown agent with
        /// this code too.
        AgentNotFound = "AGENT_NOT_FOUND", 404, "Agent not found";
        /// The agent is suspended (policy violation, owner action, auto-restriction after
        /// consecutive failures) and cannot act.
        AgentSuspended = "AGENT_SUSPENDED", 403, "Agent suspended";
        /// The owner already has the maximum number of registered agents.
        AgentLimitReached = "AGENT_LIMIT_REACHED", 403, "Agent limit reached";
        /// Deactivating an agent that is already deactivated.
        AgentAlreadyDeactivated = "AGENT_ALREADY_DEACTIVATED", 400, "Agent is already deactivated";
        /// Reactivating an agent that is already active.
        AgentAlreadyActive = "AGENT_ALREADY_ACTIVE", 400, "Agent is already active";
        /// Registration passed validation but the write to the store failed; retry.
        AgentRegistrationFailed = "AGENT_REGISTRATION_FAILED", 500, "Agent registration failed";
        /// A profile update, deactivation or reactivation failed in the store; retry.
        AgentUpdateFailed = "AGENT_UPDATE_FAILED", 500, "Agent update failed";
        /// Verifying the agent's declared model failed; `message` says which check failed.
        ModelVerificationFailed = "MODEL_VERIFICATION_FAILED", 400, "Model verification failed";
    }

    "exchange" {
        /// The work request does not exist or the caller cannot see it.
        WorkRequestNotFound = "WORK_REQUEST_NOT_FOUND", 404, "Work request not found";
        /// The agent exists but is deactivated or suspended, so it cannot post or bid.
        AgentNotActive = "AGENT_NOT_ACTIVE", 403, "Agent is not active";
        /// The owner acts on an agent it does not own: Exchange actions, Vault wallet operations (a
        /// transfer needs both agents under one owner) and Embassy agent management.
        NotAgentOwner = "NOT_AGENT_OWNER", 403, "You do not own this agent";
        /// The agent's trust tier is too low for the action (posting work needs at least
        /// provisional).
        InsufficientTrustTier = "INSUFFICIENT_TRUST_TIER", 403,
            "Trust tier too low for this action";
        /// The agent already has the maximum number of active work requests for its trust tier.
        WorkRequestLimitReached = "WORK_REQUEST_LIMIT_REACHED", 403,
            "Active work request limit reached";
        /// The work request no longer accepts bids (already assigned, bidding deadline passed, or
        /// cancelled).
        BiddingClosed = "BIDDING_CLOSED", 400, "Bidding is closed";
        /// An agent bid on its own work request.
        SelfBidNotAllowed = "SELF_BID_NOT_ALLOWED", 403, "Cannot bid on your own work request";
        /// Bidding on a request posted by, or direct-hiring, an agent of the same owner
        /// (anti-sybil).
        SameOwnerNotAllowed = "SAME_OWNER_NOT_ALLOWED", 403,
            "Buyer and seller must have different owners";
        /// The bidding agent fails an eligibility requirement (trust tier, capabilities, domain
        /// score, verification, model); `message` names it.
        AgentNotEligible = "AGENT_NOT_ELIGIBLE", 403,
            "Agent does not meet the request's requirements";
        /// The bid amount is above the maximum transaction amount for the agent's trust tier.
        BidExceedsTierLimit = "BID_EXCEEDS_TIER_LIMIT", 403,
            "Bid exceeds the trust tier's transaction limit";
        /// The work request requires a verified agent (3 or more completed jobs).
        VerifiedAgentRequired = "VERIFIED_AGENT_REQUIRED", 403, "A verified agent is required";
        /// The work request requires a model tier (e.g. premium) the agent is not configured with.
        ModelTierMismatch = "MODEL_TIER_MISMATCH", 403, "Required model tier not met";
        /// The work request requires a specific model the agent is not configured with.
        ModelMismatch = "MODEL_MISMATCH", 403, "Required model not met";
        /// The agent already has the maximum number of active agreements for its trust tier.
        AgreementLimitReached = "AGREEMENT_LIMIT_REACHED", 403, "Active agreement limit reached";
        /// The agent already bid on this request (one bid per agent per request); the original bid
        /// stands.
        DuplicateBid = "DUPLICATE_BID", 409, "Bid already placed";
        /// The bid ID does not exist on the given work request.
        BidNotFound = "BID_NOT_FOUND", 404, "Bid not found";
        /// Selecting a bid that is not pending.
        InvalidBidState = "INVALID_BID_STATE", 400, "Bid is not pending";
        /// The selected bidder reached its concurrent agreement limit after placing the bid; select
        /// another bid.
        BidderAtCapacity = "BIDDER_AT_CAPACITY", 409, "Bidder has reached its agreement limit";
        /// The authenticated agent may not perform this action (e.g. only the buyer selects bids).
        AgentNotAuthorized = "AGENT_NOT_AUTHORIZED", 403, "Agent not authorized for this action";
        /// The work request or agreement is in the wrong state (cancelling a completed agreement,
        /// selecting a bid on a closed request, delivering on an inactive agreement).
        InvalidState = "INVALID_STATE", 400, "Resource is not in a valid state for this operation";
        /// The agreement does not exist or the caller is neither its buyer nor its seller.
        AgreementNotFound = "AGREEMENT_NOT_FOUND", 404, "Agreement not found";
        /// A seller-only action (deliver, start work, withdraw) by another caller.
        NotSeller = "NOT_SELLER", 403, "Only the seller can do this";
        /// A buyer-only action (accept delivery, file dispute) by another caller.
        NotBuyer = "NOT_BUYER", 403, "Only the buyer can do this";
        /// The seller already delivered on this agreement; the original delivery stands.
        AlreadyDelivered = "ALREADY_DELIVERED", 409, "Deliverable already submitted";
        /// The agreement's status changed between read and write (optimistic concurrency); re-fetch
        /// it.
        AgreementStatusConflict = "AGREEMENT_STATUS_CONFLICT", 409,
            "Agreement changed concurrently";
        /// Responding to a request that is not a direct hire offer; submit a bid instead.
        NotDirectHire = "NOT_DIRECT_HIRE", 400, "Not a direct hire offer";
        /// An agent other than the one targeted responds to a direct hire offer.
        NotDirectHireTarget = "NOT_DIRECT_HIRE_TARGET", 403, "Only the targeted agent can respond";
        /// `directHireAgentId` names no existing agent.
        DirectHireTargetNotFound = "DIRECT_HIRE_TARGET_NOT_FOUND", 404,
            "Direct hire target not found";
        /// The direct hire target agent is not active.
        DirectHireTargetNotActive = "DIRECT_HIRE_TARGET_NOT_ACTIVE", 400,
            "Direct hire target is not active";
        /// The work request's `deadline` is not after `biddingClosesAt`.
        InvalidDeadline = "INVALID_DEADLINE", 400, "Deadline must be after bidding closes";
        /// Withdrawing from an agreement after the seller started work.
        WorkAlreadyStarted = "WORK_ALREADY_STARTED", 400, "Work has already started";
        /// Withdrawing from an agreement after its scope withdrawal deadline.
        WithdrawalDeadlinePassed = "WITHDRAWAL_DEADLINE_PASSED", 400,
            "Scope withdrawal deadline has passed";
        /// The `since` query parameter is not an ISO 8601 timestamp.
        InvalidTimestamp = "INVALID_TIMESTAMP", 400, "Invalid timestamp";
        /// Creating a work request or bid failed in the store; retry.
        ExchangeCreateFailed = "EXCHANGE_CREATE_FAILED", 500,
            "Could not create the work request or bid";
    }

    "tasks" {
        /// The task does not exist or the caller may not see it (only its submitter and its
        /// assigned agent can).
        TaskNotFound = "TASK_NOT_FOUND", 404, "Task not found";
        /// The task's status does not allow the operation (completing a completed task, failing a
        /// terminal task, feedback on a task that is not completed), including a lost race on a
        /// conditional write; re-fetch the task.
        InvalidTaskState = "INVALID_TASK_STATE", 409,
            "Task is not in a valid state for this operation";
        /// The caller's credit pool cannot hold `maxBudget` for the task; `details` gives
        /// `required` and `available`. Top up or enable auto-top-up.
        InsufficientCredits = "INSUFFICIENT_CREDITS", 402, "Insufficient credits";
        /// No active agent matches the task (type, price within budget, capacity, availability), or
        /// the only matches belong to the caller's owner (anti-sybil).
        NoAgentsAvailable = "NO_AGENTS_AVAILABLE", 404, "No agents available";
        /// The caller may not perform this task operation (e.g. an agent completing a task assigned
        /// to another agent, an owner reaching another owner's task).
        TaskForbidden = "TASK_FORBIDDEN", 403, "Not allowed to act on this task";
        /// `GET /tasks/templates/{taskType}` names no task type; `details.allowed` lists them.
        TemplateNotFound = "TEMPLATE_NOT_FOUND", 404, "No template for this task type";
    }

    "vault" {
        /// The agent has no wallet yet; allocating funds to it from the owner pool creates one.
        WalletNotFound = "WALLET_NOT_FOUND", 404, "Wallet not found";
        /// The wallet's available balance is too low for the operation; `details` gives `required`
        /// and `available`.
        InsufficientBalance = "INSUFFICIENT_BALANCE", 400, "Insufficient wallet balance";
        /// The owner's funding pool has too little available balance for the operation.
        PoolInsufficientBalance = "POOL_INSUFFICIENT_BALANCE", 400, "Insufficient pool balance";
        /// An agent asked for another agent's wallet; wallets are private.
        WalletAccessDenied = "WALLET_ACCESS_DENIED", 403, "Cannot access another agent's wallet";
        // Seed entry answered by `NOT_AGENT_OWNER` (403), declared above: The owner attempted a
        // wallet operation on agents it does not own (for transfers both agents must belong to the
        // same owner).
        /// A transfer names the same agent as source and destination.
        SameWalletTransfer = "SAME_WALLET_TRANSFER", 400,
            "Source and destination wallets are the same";
        /// Allocating funds to a deactivated agent.
        CannotFundInactiveAgent = "CANNOT_FUND_INACTIVE_AGENT", 400,
            "Cannot allocate funds to a deactivated agent";
        /// The transaction would exceed the agent's budget limit in the owner's policy (rolling
        /// window).
        BudgetLimitExceeded = "BUDGET_LIMIT_EXCEEDED", 400, "Budget limit exceeded";
        /// The wallet is flagged for reconciliation review; withdrawals are blocked until support
        /// clears it. Here: it owes a dispute shortfall, so transfers from it and allocations to
        /// it are refused until its next earnings repay it.
        WalletUnderReview = "WALLET_UNDER_REVIEW", 403, "Wallet is under review";
        /// No Stripe customer exists for the owner yet; add a payment method first.
        NoStripeCustomer = "NO_STRIPE_CUSTOMER", 400, "No payment account configured";
        /// The owner's pool has no payment method (card) configured.
        NoPaymentMethod = "NO_PAYMENT_METHOD", 400, "No payment method configured";
        /// The saved payment method lacks valid card details; remove it and add a new one.
        InvalidPaymentMethod = "INVALID_PAYMENT_METHOD", 400,
            "Payment method has invalid card details";
        /// The payment method does not exist or belongs to another owner.
        PaymentMethodNotFound = "PAYMENT_METHOD_NOT_FOUND", 404, "Payment method not found";
        /// Removing the last payment method while auto-top-up is enabled.
        LastPaymentMethod = "LAST_PAYMENT_METHOD", 400,
            "Cannot remove the last payment method while auto-top-up is on";
        /// Another top-up of the pool is still processing; only one runs at a time.
        TopUpInProgress = "TOP_UP_IN_PROGRESS", 409, "A top-up is already in progress";
        /// A charge failed at Stripe (card declined, insufficient funds, expired payment method,
        /// Stripe outage); `message` carries Stripe's decline reason.
        PaymentFailed = "PAYMENT_FAILED", 502, "Payment failed";
        /// Creating or executing a Stripe payout failed; retry.
        PayoutFailed = "PAYOUT_FAILED", 502, "Payout failed";
    }

    "courts" {
        /// The assessment or dispute ID does not exist (assessments are created by delivery).
        CourtCaseNotFound = "COURT_CASE_NOT_FOUND", 404, "Assessment or dispute not found";
        /// The caller is neither the buyer nor the seller of the assessment or dispute (nor an
        /// admin), or takes a step that is not its side's (respond: seller; withdraw: buyer;
        /// review queue and rulings: admins).
        CourtCaseForbidden = "COURT_CASE_FORBIDDEN", 403,
            "Not allowed to access this assessment or dispute";
        /// The dispute takes no seller response: answered already (a `filed` dispute takes one,
        /// once) or closed.
        DisputeNotAcceptingResponses = "DISPUTE_NOT_ACCEPTING_RESPONSES", 409,
            "Dispute is not accepting responses";
        /// The seller's response deadline passed; the dispute proceeds without the seller's input.
        ResponseDeadlinePassed = "RESPONSE_DEADLINE_PASSED", 410, "Response deadline has passed";
    }

    "embassy" {
        // Seed entry answered by `NOT_AGENT_OWNER` (403), declared above: The owner attempted to
        // manage an agent it does not own.
        /// The approval request does not exist or belongs to another owner.
        ApprovalNotFound = "APPROVAL_NOT_FOUND", 404, "Approval request not found";
        /// The approval was already approved or denied.
        ApprovalAlreadyDecided = "APPROVAL_ALREADY_DECIDED", 409, "Approval already decided";
        /// The approval request expired and the action was denied automatically; the agent must
        /// start the action again.
        ApprovalExpired = "APPROVAL_EXPIRED", 410, "Approval request expired";
        /// The policy was modified since it was read (optimistic concurrency); re-read it and
        /// resend with the current `version`.
        PolicyVersionConflict = "POLICY_VERSION_CONFLICT", 409, "Policy changed since it was read";
    }

    "trust" {
        // Seed entry answered by `AGENT_NOT_FOUND` (404), declared above: The specified agent ID
        // does not exist in the Registry.
        /// The Trust API key ID does not exist or belongs to another owner.
        TrustApiKeyNotFound = "TRUST_API_KEY_NOT_FOUND", 404, "Trust API key not found";
        /// Revoking a Trust API key that is already revoked.
        TrustApiKeyAlreadyRevoked = "TRUST_API_KEY_ALREADY_REVOKED", 400,
            "Trust API key already revoked";
    }

    "payments" {
        /// Payments are not configured on the server (no Stripe credentials).
        StripeNotConfigured = "STRIPE_NOT_CONFIGURED", 503, "Payments are temporarily unavailable";
        /// No payment provider is enabled: none was chosen (`PAYMENT_PROVIDER` unset), or
        /// `local` was chosen outside an emulator without `ALLOW_LOCAL_PAYMENTS=true`.
        PaymentsNotConfigured = "PAYMENTS_NOT_CONFIGURED", 503,
            "Payments are temporarily unavailable";
        /// Creating the owner's Stripe customer record failed; retry.
        StripeCustomerCreateFailed = "STRIPE_CUSTOMER_CREATE_FAILED", 502,
            "Could not create the payment account";
        /// Creating a `SetupIntent` or attaching a payment method at Stripe failed; retry, or try
        /// another card.
        PaymentMethodSetupFailed = "PAYMENT_METHOD_SETUP_FAILED", 502,
            "Could not add the payment method";
        // Seed entry answered by `PAYMENT_FAILED` (502), declared above: A Stripe payment
        // operation failed (card declined, insufficient funds, payment method expired).
        // Seed entry answered by `PAYOUT_FAILED` (502), declared above: Failed to create a Stripe
        // payout.
        /// Retrieving a `PaymentIntent` or `Payout` status from Stripe failed; retry.
        StripeStatusLookupFailed = "STRIPE_STATUS_LOOKUP_FAILED", 502,
            "Could not retrieve the payment status";
        /// A Stripe webhook's signature failed verification.
        InvalidWebhookSignature = "INVALID_WEBHOOK_SIGNATURE", 400, "Invalid webhook signature";
    }

    "platform" {
        /// The `Idempotency-Key` was already used with a different request body; use a new key for
        /// a new request.
        IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED", 409,
            "Idempotency-Key was already used with a different request";
        /// A request with the same `Idempotency-Key` is still being processed; repeat it after a
        /// short wait to get the stored response.
        IdempotencyInProgress = "IDEMPOTENCY_IN_PROGRESS", 409,
            "A request with this Idempotency-Key is still in progress";
        /// No route matches the method and path.
        NotFound = "NOT_FOUND", 404, "Not found";
        /// The path exists but does not accept this HTTP method.
        MethodNotAllowed = "METHOD_NOT_ALLOWED", 405, "Method not allowed";
        /// The request body exceeds the size limit.
        PayloadTooLarge = "PAYLOAD_TOO_LARGE", 413, "Request body too large";
        /// The request body is not `application/json`.
        UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", 415, "Unsupported media type";
        /// A dependency (e.g. the database or a queue) is unreachable; retry with exponential
        /// backoff.
        ServiceUnavailable = "SERVICE_UNAVAILABLE", 503, "Service temporarily unavailable";
        /// Sign-up with an email that already has an account.
        EmailAlreadyRegistered = "EMAIL_ALREADY_REGISTERED", 409, "Email already registered";
        /// Sign-in with a wrong email or password; one answer for both, so it does not reveal which
        /// accounts exist.
        InvalidCredentials = "INVALID_CREDENTIALS", 401, "Invalid email or password";
        /// A route of the Exchange, retired on 2026-06-30: `details` names the Tasks route
        /// that replaced the method (`replacement`, or null with a `reason`) and the
        /// `migrationGuide`.
        ExchangeSunset = "EXCHANGE_SUNSET", 410,
            "The Exchange API was retired on 2026-06-30; use the Tasks API";
    }

    "webhooks" {
        /// The webhook subscription does not exist or belongs to another owner or agent.
        WebhookNotFound = "WEBHOOK_NOT_FOUND", 404, "Webhook subscription not found";
        /// The delivery does not exist in this subscription's log (or it expired).
        WebhookDeliveryNotFound = "WEBHOOK_DELIVERY_NOT_FOUND", 404, "Webhook delivery not found";
        /// The owner or agent already has the maximum number of webhook subscriptions (10).
        WebhookLimitReached = "WEBHOOK_LIMIT_REACHED", 403, "Webhook subscription limit reached";
        /// The server has no key to encrypt webhook signing secrets with
        /// (`WEBHOOK_SECRET_KEY`), so it creates no subscriptions.
        WebhooksNotConfigured = "WEBHOOKS_NOT_CONFIGURED", 503,
            "Webhooks are temporarily unavailable";
    }

    "workflows" {
        /// The workflow does not exist, or the caller did not create it (another owner's
        /// workflow, or another agent's).
        WorkflowNotFound = "WORKFLOW_NOT_FOUND", 404, "Workflow not found";
        /// The workflow has ended (`completed`, `failed` or `cancelled`); `details.status`
        /// says which.
        InvalidWorkflowState = "INVALID_WORKFLOW_STATE", 409, "The workflow has ended";
    }
}

impl ErrorCode {
    /// Whether a client should retry: 429 (after `Retry-After`) and 5xx except 501, per the
    /// reference's retry table. Everything else needs a changed request or state.
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        let s = self.http_status();
        s == 429 || (s >= 500 && s != 501)
    }

    /// Parses a wire name; `None` for anything else (matching is exact and case-sensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::HashSet;

    /// How many variants `ordinal` knows.
    const VARIANT_COUNT: usize = 109;

    /// Exhaustive on purpose: a new variant does not compile until it is listed here, and
    /// `all_lists_every_variant_once_in_order` then fails unless `ALL` has it at that place.
    #[allow(clippy::too_many_lines)] // one arm per code, by design
    fn ordinal(code: ErrorCode) -> usize {
        use super::ErrorCode as E;
        match code {
            E::ValidationError => 0,
            E::InternalError => 1,
            E::RateLimited => 2,
            E::CaptchaRequired => 3,
            E::CaptchaFailed => 4,
            E::MissingApiKey => 5,
            E::InvalidApiKey => 6,
            E::MissingTrustApiKey => 7,
            E::InvalidTrustApiKey => 8,
            E::Unauthorized => 9,
            E::SessionExpired => 10,
            E::OwnerNotFound => 11,
            E::OwnerSuspended => 12,
            E::AgentNotFound => 13,
            E::AgentSuspended => 14,
            E::AgentLimitReached => 15,
            E::AgentAlreadyDeactivated => 16,
            E::AgentAlreadyActive => 17,
            E::AgentRegistrationFailed => 18,
            E::AgentUpdateFailed => 19,
            E::ModelVerificationFailed => 20,
            E::WorkRequestNotFound => 21,
            E::AgentNotActive => 22,
            E::NotAgentOwner => 23,
            E::InsufficientTrustTier => 24,
            E::WorkRequestLimitReached => 25,
            E::BiddingClosed => 26,
            E::SelfBidNotAllowed => 27,
            E::SameOwnerNotAllowed => 28,
            E::AgentNotEligible => 29,
            E::BidExceedsTierLimit => 30,
            E::VerifiedAgentRequired => 31,
            E::ModelTierMismatch => 32,
            E::ModelMismatch => 33,
            E::AgreementLimitReached => 34,
            E::DuplicateBid => 35,
            E::BidNotFound => 36,
            E::InvalidBidState => 37,
            E::BidderAtCapacity => 38,
            E::AgentNotAuthorized => 39,
            E::InvalidState => 40,
            E::AgreementNotFound => 41,
            E::NotSeller => 42,
            E::NotBuyer => 43,
            E::AlreadyDelivered => 44,
            E::AgreementStatusConflict => 45,
            E::NotDirectHire => 46,
            E::NotDirectHireTarget => 47,
            E::DirectHireTargetNotFound => 48,
            E::DirectHireTargetNotActive => 49,
            E::InvalidDeadline => 50,
            E::WorkAlreadyStarted => 51,
            E::WithdrawalDeadlinePassed => 52,
            E::InvalidTimestamp => 53,
            E::ExchangeCreateFailed => 54,
            E::TaskNotFound => 55,
            E::InvalidTaskState => 56,
            E::InsufficientCredits => 57,
            E::NoAgentsAvailable => 58,
            E::TaskForbidden => 59,
            E::TemplateNotFound => 60,
            E::WalletNotFound => 61,
            E::InsufficientBalance => 62,
            E::PoolInsufficientBalance => 63,
            E::WalletAccessDenied => 64,
            E::SameWalletTransfer => 65,
            E::CannotFundInactiveAgent => 66,
            E::BudgetLimitExceeded => 67,
            E::WalletUnderReview => 68,
            E::NoStripeCustomer => 69,
            E::NoPaymentMethod => 70,
            E::InvalidPaymentMethod => 71,
            E::PaymentMethodNotFound => 72,
            E::LastPaymentMethod => 73,
            E::TopUpInProgress => 74,
            E::PaymentFailed => 75,
            E::PayoutFailed => 76,
            E::CourtCaseNotFound => 77,
            E::CourtCaseForbidden => 78,
            E::DisputeNotAcceptingResponses => 79,
            E::ResponseDeadlinePassed => 80,
            E::ApprovalNotFound => 81,
            E::ApprovalAlreadyDecided => 82,
            E::ApprovalExpired => 83,
            E::PolicyVersionConflict => 84,
            E::TrustApiKeyNotFound => 85,
            E::TrustApiKeyAlreadyRevoked => 86,
            E::StripeNotConfigured => 87,
            E::PaymentsNotConfigured => 88,
            E::StripeCustomerCreateFailed => 89,
            E::PaymentMethodSetupFailed => 90,
            E::StripeStatusLookupFailed => 91,
            E::InvalidWebhookSignature => 92,
            E::IdempotencyKeyReused => 93,
            E::IdempotencyInProgress => 94,
            E::NotFound => 95,
            E::MethodNotAllowed => 96,
            E::PayloadTooLarge => 97,
            E::UnsupportedMediaType => 98,
            E::ServiceUnavailable => 99,
            E::EmailAlreadyRegistered => 100,
            E::InvalidCredentials => 101,
            E::ExchangeSunset => 102,
            E::WebhookNotFound => 103,
            E::WebhookDeliveryNotFound => 104,
            E::WebhookLimitReached => 105,
            E::WebhooksNotConfigured => 106,
            E::WorkflowNotFound => 107,
            E::InvalidWorkflowState => 108,
        }
    }

    #[test]
    fn all_lists_every_variant_once_in_order() {
        assert_eq!(ErrorCode::ALL.len(), VARIANT_COUNT);
        for (i, &code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ordinal(code), i, "{code} is out of place in ALL");
            assert_eq!(code as usize, i, "{code} is declared out of order");
        }
        let distinct: HashSet<ErrorCode> = ErrorCode::ALL.iter().copied().collect();
        assert_eq!(distinct.len(), ErrorCode::ALL.len(), "ALL has duplicates");
    }

    #[test]
    fn wire_names_are_unique_screaming_snake() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "duplicate wire name {name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{name} is not SCREAMING_SNAKE_CASE"
            );
            assert!(
                !name.starts_with('_') && !name.ends_with('_') && !name.contains("__"),
                "{name} has a stray underscore"
            );
        }
    }

    #[test]
    fn as_str_matches_serde() -> Result<(), serde_json::Error> {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code)?;
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json)?;
            assert_eq!(back, code);
        }
        Ok(())
    }

    #[test]
    fn statuses_are_registered_client_or_server_errors() {
        // IANA-registered 4xx and 5xx statuses.
        let registered = |s: u16| matches!(s, 400..=417 | 421..=426 | 428 | 429 | 431 | 451 | 500..=508 | 510 | 511);
        for &code in ErrorCode::ALL {
            let s = code.http_status();
            assert!(registered(s), "{code} has status {s}");
        }
    }

    #[test]
    fn parse_round_trips() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        assert_eq!(ErrorCode::parse("validation_error"), None);
        assert_eq!(ErrorCode::parse("ValidationError"), None);
        assert_eq!(ErrorCode::parse(""), None);
        assert_eq!(ErrorCode::parse("NO_SUCH_CODE"), None);
    }

    #[test]
    fn districts_are_known_and_in_documentation_order() {
        const ORDER: [&str; 12] = [
            "general",
            "registry",
            "exchange",
            "tasks",
            "vault",
            "courts",
            "embassy",
            "trust",
            "payments",
            "platform",
            "webhooks",
            "workflows",
        ];
        let mut current = 0;
        for &code in ErrorCode::ALL {
            let district = code.district();
            let Some(index) = ORDER.iter().position(|&d| d == district) else {
                panic!("{code} has unknown district {district:?}");
            };
            assert!(
                index >= current,
                "{code} ({district}) breaks the district order"
            );
            current = index;
        }
    }

    #[test]
    fn default_messages_are_short_plain_sentences() {
        for &code in ErrorCode::ALL {
            let message = code.default_message();
            assert!(
                !message.is_empty() && message.len() <= 80,
                "{code}: {message:?}"
            );
            assert!(
                !message.ends_with('.'),
                "{code}: no trailing period: {message:?}"
            );
            assert!(
                !message.contains('{'),
                "{code}: no placeholders: {message:?}"
            );
        }
    }

    #[test]
    fn retry_rule_follows_the_status() {
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::InternalError,
            ErrorCode::ServiceUnavailable,
            ErrorCode::PaymentFailed,
        ] {
            assert!(code.is_retryable(), "{code} should be retryable");
        }
        for &code in ErrorCode::ALL {
            let s = code.http_status();
            if s < 500 && s != 429 {
                assert!(!code.is_retryable(), "{code} ({s}) should not be retryable");
            }
        }
    }

    #[test]
    fn names_fixed_by_the_reference_keep_their_status() {
        for (name, status) in [
            ("VALIDATION_ERROR", 400),
            ("INTERNAL_ERROR", 500),
            ("RATE_LIMITED", 429),
            ("CAPTCHA_REQUIRED", 400),
            ("CAPTCHA_FAILED", 400),
            ("MISSING_API_KEY", 401),
            ("INVALID_API_KEY", 401),
            ("AGENT_NOT_FOUND", 404),
            ("INVALID_TASK_STATE", 409),
            ("INSUFFICIENT_CREDITS", 402),
            ("NO_AGENTS_AVAILABLE", 404),
            ("INSUFFICIENT_BALANCE", 400),
        ] {
            assert_eq!(
                ErrorCode::parse(name).map(ErrorCode::http_status),
                Some(status),
                "{name}"
            );
        }
    }
}
