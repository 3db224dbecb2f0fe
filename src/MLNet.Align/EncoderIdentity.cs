namespace MLNet.Align;

/// <summary>What an encoder is, for cache keys, bundles and reports.</summary>
/// <param name="Name">Human-readable name, e.g. "resnet18" or "all-MiniLM-L6-v2".</param>
/// <param name="Sha256">Lower-case hex SHA-256 over the model bytes (and preprocessing model, tokenizer files) plus the
/// options that change the output (normalisation, pooling, max length): equal identities give equal embeddings.</param>
/// <param name="Dimension">Width of the pooled embedding.</param>
/// <param name="TokenDimension">Width of one token feature, or null when the encoder exposes no tokens.</param>
public sealed record EncoderIdentity(string Name, string Sha256, int Dimension, int? TokenDimension);
