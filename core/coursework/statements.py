"""The assignments' statements: the README each student receives, in Markdown, with the
equations of what they write (one per assignment of :mod:`duetrl.core.coursework.specs`)."""

RETURNS_STATEMENT = r"""
# Assignment `returns`: discounted returns and GAE with terminations and truncations (4.2.2)

Arrays are time-major, `(T, N)`: T steps of N environments. `terminations[t]` is 1 where
s_{t+1} is terminal (nothing follows, its value is 0); `truncations[t]` is 1 where the
episode was cut (a time limit): the future still exists, so we bootstrap from V(s_{t+1}).
The last row is always a cut (the rollout ends there).

Let c_t = 1 when step t+1 continues the episode of step t (no end at t and t < T-1), else 0.

**compute_returns** (`next_values=None` means zeros):

    G_t = r_t + gamma (1 - term_t) [ c_t G_{t+1} + (1 - c_t) V(s_{t+1}) ]

**compute_gae**:

    delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma lambda c_t A_{t+1}
    returns = A_t + V(s_t)        ->  return (advantages, returns)

Outputs keep the inputs' shape and floating dtype (float64 in, float64 out).
Edge cases the grader checks: gamma = 0 and 1, lambda = 0 and 1, a termination at step 0,
a truncation at the last step, episodes that end in the middle of the rollout.
"""

ATTENTION_STATEMENT = r"""
# Assignment `attention`: scaled dot-product and multi-head attention (2.1.2, 5.1)

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

**scaled_dot_product_attention(q, k, v, mask=None, return_attention_weights=False)**:
q `(..., q_len, d_k)`, k `(..., k_len, d_k)`, v `(..., k_len, d_v)`; `mask` broadcastable to
`(..., q_len, k_len)` with **1 = attend, 0 = masked**. A masked score is *replaced* by the
pinned `MASK_FILL_VALUE` (`duetrl.core.constants`), so a fully masked row gives uniform
weights (never NaN). Return `(..., q_len, d_v)`, and the weights `(..., q_len, k_len)` when
`return_attention_weights` is true.

**MultiHeadAttention.forward** (PyTorch) / **.call** (Keras): project q, k, v with
`q_linear`, `k_linear`, `v_linear`, split into `num_heads` heads of `head_dim`
(`(B, T, d_model) -> (B, heads, T, head_dim)`), attend (the same mask for every head:
`head_broadcast_mask`), merge the heads back to `(B, T, d_model)` and apply `out`.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_o + b_o

Do not call the framework's ready-made attention (`F.scaled_dot_product_attention`,
`nn.MultiheadAttention`, `keras.layers.MultiHeadAttention`): the grader rejects it.
"""

REINFORCE_STATEMENT = r"""
# Assignment `reinforce`: the REINFORCE loss and one update (4.2.3, 5.2)

The policy-gradient theorem: grad J = E[ sum_t grad log pi(a_t|s_t) (G_t - b(s_t)) ].
One update from a rollout of N whole episodes, time-major `(T, N)`:

1. **prepare**: returns G_t (`compute_returns` from `returns.py`, which you may use), used as
   the weights; standardised when `agent.settings.normalize_advantages`
   (`normalize_advantages(advantages, mask)`); everything flattened to `(B = T*N, ...)`:
   return `{"states", "actions", "advantages", "mask"}`.
2. **compute_loss**: `L = mean_t[-log pi(a_t|s_t) G_t]` over mask == 1 (`masked_mean`);
   `agent.policy.log_prob_entropy(states, actions)` gives log pi and the entropy. Return
   `(L, {"loss", "policy_loss", "entropy"})`.
3. **train_step**: dL/dtheta for `agent.optimizer.parameters`, then
   `agent.optimizer.apply_gradients(grads, learning_rate)`; return the metrics.
4. **update**: `tensors, learning_rate = agent.to_tensors(rollout)`, then 1-3; return the
   metrics as Python floats.
5. **prepare_with_baseline** (REINFORCE with a learned baseline V(s)): values
   V(s_t) and V(s_{t+1}) from `agent.value`, returns bootstrapped from V(s_{t+1}) at a cut
   (`compute_returns(..., next_values)`), advantages **A_t = G_t - V(s_t)**, standardised as in
   1; return `{"states", "actions", "advantages", "returns", "mask"}`.
"""

PPO_STATEMENT = r"""
# Assignment `ppo-clip`: the PPO clipped objective (2.3.3)

    rho_t = pi(a_t|s_t) / pi_old(a_t|s_t) = exp(log pi - log pi_old)
    L     = -mean_t[ min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) ]

**ppo_clip_loss(log_probs, old_log_probs, advantages, clip_eps, mask=None)**: all inputs
`(B,)`; the mean is over mask == 1 (`masked_mean`). Return a scalar tensor in the inputs'
dtype; its gradient with respect to `log_probs` is graded too.

Published test vectors (eps = 0.2): A = +1, rho = 1.3 -> L = -1.2; A = -1, rho = 0.7 ->
L = +0.8; A = -1, rho = 1.3 -> L = +1.3.
"""

CARTPOLE_STATEMENT = r"""
# Assignment `reinforce-cartpole`: a REINFORCE agent that solves CartPole-v1 (learning)

Write the same four functions as in the `reinforce` assignment (`prepare`, `compute_loss`,
`train_step`, `update`). The grader plugs your `update` into duetrl's training loop
(`duetrl.core.rl.train.PolicyGradientTrainer`, default REINFORCE settings, 8 environments)
and trains on two seeds you do not know. Each seed passes when, within the step budget (500k
steps), the mean return of the last 100 training episodes reaches 475 and the trained
policy's greedy return over 10 fresh episodes, measured by the grader, reaches 90% of it.
Try it yourself: `duetrl train reinforce --env CartPole-v1` runs the project's solution;
`python test_reinforce_public.py` runs yours on a short budget.
"""

LM_AGENT_STATEMENT = r"""
# Assignment `lm-agent`: an LM that scores actions, and returns-to-go tokens (3.2.3, 3.2.5)

## Part A: GLAM's policy (Carta et al. 2023)

In a text game a state comes with a prompt p (the goal, the observation, "action :") and
K_s admissible commands, each a few words a_k = (a_k,1 ... a_k,L_k). The language model's
log-probability of a whole command is the **sum** of its tokens' log-probabilities:

    score_k = sum_{i=1}^{L_k} log p_LM(a_k,i | p, a_k,<i)
    pi(a_k | s) = exp(score_k) / sum_{j admissible} exp(score_j)      (softmax over the commands)
    V(s) = value_head(h_L at the prompt's last token)

The batch is a grid of S states x K places, one row per (state, place), state-major
(row s K + k), each row the prompt then the command, right-padded to T tokens:

| array | shape | meaning |
|---|---|---|
| `tokens` | (S K, T) int64 | prompt + command + padding (padding ids mean nothing) |
| `mask` | (S K, T-1) | `mask[r, t] = 1` where token t+1 of row r is a command token |
| `admissible` | (S, K) | 1 for a real command, 0 for an empty place of the grid |
| `prompt_last` | (S,) int64 | the column of each state's prompt's last token |

The GPT's output at column t is the distribution of token **t+1**: feed `tokens[:, :-1]`,
score `tokens[:, 1:]`, so that `mask` lines up (column t of `mask` flags token t+1).

1. **command_scores(token_logp, mask)**: `(R, T-1)`, `(R, T-1)` -> `(R,)`, the masked **sum**
   (not the mean: the score is log p_LM of the whole command; prompt and padding columns
   count for nothing).
2. **admissible_log_probs(scores, admissible)**: `(S, K)` -> `(S, K)`, log pi: a log-softmax
   over each state's admissible commands only. Fill the empty places with `MASK_FILL_VALUE`
   before the softmax (probability 0) and multiply by `admissible` after it (log pi = 0
   there, so no -1e9 reaches a loss). Not the LM's own probabilities (a softmax over the
   vocabulary): renormalise over the commands.
3. **agent_outputs(model, value_head, tokens, mask, admissible, prompt_last)**: one pass of
   `model.hidden_states(...)` (the GPT's last hidden states, `(B, T, D)`); logits with the tied
   head (`hidden @ W_te^T`, W_te the token embedding); log-probabilities of the next tokens
   (`gather_log_probs(logits, ids)` is yours to use); the scores reshaped to `(S, K)`; log pi;
   and V(s) from `value_head` (`(B, T, D)` -> `(B, T)`) on the hidden state at
   `prompt_last[s]` of the state's first row (row s K). Return `(log_pi (S, K), values (S,))`.

## Part B: returns-to-go and their tokens (the Decision Transformer, Chen et al. 2021)

**returns_to_go(rewards, dones, gamma)**: `rewards` and `dones` `(..., T)`, time on the
last axis, several episodes laid end to end; `dones[..., t] = 1` (in the rewards' dtype) at
each episode's last step. Nothing is bootstrapped; past the last column R = 0:

    R_t = sum_{k=t}^{end of t's episode} gamma^(k-t) r_k  =  r_t + gamma (1 - done_t) R_{t+1}

Compute it **backwards** in time; keep the rewards' dtype.

**return_tokens(returns, low, high, num_buckets)**: int64 bucket ids, the returns' shape,
linearly over the dataset's range (as `core/agents/dt_data.ReturnBuckets.token`):

    bucket(R) = round((R - low) / (high - low) * (num_buckets - 1)), clipped to [0, num_buckets-1]

A return exactly halfway between two bucket centres goes to the **even** bucket
(round-half-to-even, as `torch.round`, `tf.round` and `np.rint` do); returns outside
[low, high] go to the end buckets; `high == low` (every return the same) gives bucket 0.

Edge cases the grader checks: commands of different lengths, padding with arbitrary ids,
states with fewer commands than the grid's width, float32 in and float32 out, gamma < 1 and
gamma = 1, one-step episodes, an array that ends in the middle of an episode, returns at
bucket boundaries and outside the range. Do not call the project's ready-made versions
(`sequence_log_probs`, `token_log_probs`, `inference_outputs`, `compute_returns`): the grader
refuses them.
"""

SCST_STATEMENT = r"""
# Assignment `scst`: self-critical sequence training for translation (6.3.2)

A translation model (a GPT fed the source sentence, then its output) is trained first by
maximum likelihood, then with a sequence-level reward r (sentence BLEU against the reference
translation; Rennie et al. 2017). For each source sentence x_i the policy samples k
translations y_ij, and decodes one greedily, y^_i: what the model outputs at test time. The
greedy decode's reward is the baseline, so a sample is pushed up exactly when it beats it:

    A_ij = r(y_ij) - r(y^_i)                                          (self-critical advantage)
    L(theta) = -1/N sum_ij A_ij sum_t m_ijt log pi_theta(y_ijt | x_i, y_ij,<t)     N = M k
    dL / d log pi(y_ijt) = -A_ij m_ijt / N

Rows are **source-major**: the k samples of source i are rows i k, ..., i k + k - 1, so row
i k + j gets the baseline `greedy_rewards[i]`. The rewards come from sacrebleu on the host: they
are numbers, not functions of theta, so the only gradient is through log pi. The mask m is 1 on
each sample's output tokens (up to and including `<eos>`) and 0 on padding; the log-probs of
padding positions are arbitrary numbers and must count for nothing. The loss is a mean over
the **N samples** of each sample's **sum** of token log-probs (log pi(y | x) of the whole
sentence), not a mean over tokens.

| function (arguments) | shapes in | returns |
|---|---|---|
| `scst_advantages(sample_rewards, greedy_rewards)` | (M k,), (M,) | A (M k,) |
| `scst_loss(logp, sample_rewards, greedy_rewards, mask)` | (N, T), (N,), (M,), (N, T) | L () |
| `gather_log_probs(logits, tokens)` | (B, T, V), (B, T) int64 | (B, T) |
| `token_log_probs(model, tokens)` | a GPT, (B, T) int64 | (B, T-1) |

1. **scst_advantages**: your file checks the shapes and gets k (`_per_source(N, M)` refuses
   an N that is not a multiple of M). Repeat each greedy reward k times
   (`repeat_interleave`, `tf.repeat`; not `tile`, which would give row i k + j the greedy
   reward of source (i k + j) mod M).
2. **scst_loss**: the advantages (call your `scst_advantages`), each sample's masked sum of
   token log-probs, weighted by its advantage, averaged over the N samples, negated. Its value
   and its gradient with respect to `logp` are graded.
3. **gather_log_probs**: a log-softmax over the vocabulary (the last axis), then each
   position's entry at its token.
4. **token_log_probs**: the GPT's output at column t (`model(ids)`: logits (B, T, V), the tied
   head) is the distribution of token **t + 1**, having seen tokens 0..t:

       logp[:, t] = log softmax(model(tokens[:, :-1]))[:, t, tokens[:, t+1]]

   feed `tokens[:, :-1]`, score `tokens[:, 1:]` (the causal model gives the same numbers for
   the first T - 1 columns of `model(tokens)`).

Edge cases the grader checks: several sources with different greedy rewards, samples of one
token and samples that fill the row, nonzero log-probs on the padding, float32 in and float32
out, logits whose vocabulary and time axes differ in length. Do not call the project's
ready-made versions (`sequence_log_probs`, `inference_log_probs`): the grader refuses them.
"""

RECOMMENDER_STATEMENT = r"""
# Assignment `recommender`: the top-K off-policy correction (6.2.2, Chen et al. 2019)

A recommender pi(a | s), a softmax over the N items of a catalogue, learns by REINFORCE from
events another system logged: in state s_n the logging policy beta showed item a_n with
probability beta(a_n | s_n), and the user gave reward R_n. Two corrections make the gradient
that of the right objective:

    w_n      = min(pi(a_n | s_n) / beta(a_n | s_n), c)     capped importance weight
    lambda_n = K (1 - pi(a_n | s_n))^(K - 1)               top-K multiplier (slates of K items)
    f_n      = 1 (reinforce),  w_n (off_policy),  lambda_n w_n (top_k)
    L        = -1/M sum_n m_n f_n R_n log pi(a_n | s_n),   M = sum_n m_n

lambda_K is the derivative of alpha_K = 1 - (1 - pi)^K, the chance that K draws from pi show
item a: the gradient of sum_a alpha_K(a) R(a) is REINFORCE's times lambda_K. f is a
**constant** of the gradient (detach / tf.stop_gradient): only log pi is differentiated.

| function (arguments) | shapes in | returns |
|---|---|---|
| `top_k_multiplier(pi, k)` | (...), an int K >= 1 | lambda_K (...) |
| `importance_weights(pi, beta, cap)` | (...), (...), a float c > 0 | w (...) |
| `event_weights(pi, beta, method, cap, k)` | (...), (...), a str, c, K | f (...) |
| `corrected_loss(logits, actions, rewards, beta, mask, method, cap, k)` | see 4. | L () |

1. **top_k_multiplier**: K (1 - pi)^(K - 1), elementwise; K = 1 gives 1 everywhere.
2. **importance_weights**: pi / beta, capped **above** at c.
3. **event_weights**: f of the method (`"reinforce"`, `"off_policy"` or `"top_k"`), with the
   two functions above; cut it from the graph.
4. **corrected_loss**: the logits are (B, E, N), the actions int64 and the other arrays
   (B, E). log pi(a_n | s_n) from the logits (a log-softmax over the items, the last axis,
   then each event's item), f from `event_weights` at pi = exp(log pi), and the masked mean
   above. Its value and its gradient with respect to the logits are graded.

Edge cases the grader checks: pi / beta on both sides of the cap, K = 1, float32 in and float32
out, masked events, the three methods. Do not call the project's ready-made versions (the
reference, `top_k_objective_grad`): the grader refuses them.
"""

KG_STATEMENT = r"""
# Assignment `kg`: the walk's action mask and the masked log-softmax (6.3.3, MINERVA)

A query (e_q, r_q, ?) over a knowledge graph is answered by a walk of T hops from e_q. The
walker standing on entity e_t chooses among the K places of e_t's row of a padded grid:

    column 0            (NO_OP, e_t)        the stay: always admissible
    columns 1 .. d      (r_k, e_k)          e_t's outgoing edges
    columns d+1 .. K-1  (<pad> = 0, e_t)    padding: never admissible

**action_mask(candidate_relations, candidate_entities, current_entities, query_entities,
query_relations, answers, training)**: the grid rows `(B, K)` of B walkers, where each stands
`(B,)`, each walker's query entity, query relation and answer `(B,)`, and a Python bool.
Return the mask `(B, K)` (bool, or 0/1 numbers): 1 where the walker may go.

    m_k = [r_k != <pad>]  and not ( training and e_t = e_q and r_k = r_q and e_k = answer )

While training, the query is a fact the graph holds: the edge (e_q, r_q, answer) would answer
it in one hop, and an agent allowed to take it learns "r_q = r_q", a lookup that is useless for
the facts the graph is missing. Only that edge, and only at the query's entity, is closed:
another walker's edge (r_q, answer) is a different fact, other edges of r_q lead to other
answers, and at test time (`training` false) nothing but padding is closed.

**masked_log_softmax(scores, mask)**: scores and mask `(B, K)` (1 = open). Return log pi over
the open places of each row, 0 at the closed ones:

    log pi_k = s_k - log sum_{j: m_j = 1} exp(s_j)   where m_k = 1, else 0

Replace the closed scores by `MASK_FILL_VALUE` (`duetrl.core.constants`, -1e9) before the
log-softmax over the last axis, and multiply by the mask after it, so no -1e9 reaches a loss.

| function (arguments) | shapes in | returns |
|---|---|---|
| `action_mask(...)`, the 7 arguments above | (B, K) int64 x 2, (B,) int64 x 4, bool | (B, K) |
| `masked_log_softmax(scores, mask)` | (B, K), (B, K) | (B, K) |

Edge cases the grader checks: walkers at and away from the query's entity, an edge of the
query relation to another entity, an edge of another relation to the answer, the same edge
(r_q, answer) from a walker elsewhere, rows full and rows with padding, test time; a row whose
only open place is the stay, float32 in and float32 out. Do not call the project's ready-made
versions (`admissible_log_probs`, `inference_step`): the grader refuses them.
"""
