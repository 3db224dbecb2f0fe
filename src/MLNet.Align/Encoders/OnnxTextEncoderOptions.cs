using System.Text.Json.Serialization;

namespace MLNet.Align.Encoders;

/// <summary>Tokenizer family of a text encoder.</summary>
public enum TextTokenizerKind
{
    /// <summary>BERT WordPiece (vocab.txt): [CLS] ids [SEP], e.g. MiniLM, BERT, E5, BGE, arctic-embed.</summary>
    WordPiece,

    /// <summary>Byte-level BPE (GPT-2/RoBERTa vocab.json + merges.txt): &lt;s&gt; ids &lt;/s&gt;, e.g. RoBERTa, MPNet-style
    /// RoBERTa vocabularies.</summary>
    ByteLevelBpe,
}

/// <summary>How token states become one sentence embedding (sentence-transformers Pooling module).</summary>
public enum TextPooling
{
    /// <summary>Attention-mask-weighted mean of the last hidden states (sentence-transformers default).</summary>
    Mean,
    /// <summary>The hidden state of the first token ([CLS] / &lt;s&gt;).</summary>
    Cls,
    /// <summary>The output is already a sentence embedding [N, D]; no pooling (tokens unavailable).</summary>
    None,
}

/// <summary>Options of <see cref="OnnxTextEncoder"/>.</summary>
public sealed class OnnxTextEncoderOptions
{
    /// <summary>Name reported in <see cref="EncoderIdentity.Name"/>.</summary>
    public string Name { get; set; } = "onnx-text";

    /// <summary>Path of the ONNX model (ignored when <see cref="ModelBytes"/> is set).</summary>
    public string? ModelPath { get; set; }

    /// <summary>The ONNX model bytes.</summary>
    [JsonIgnore] public byte[]? ModelBytes { get; set; }

    /// <summary>Tokenizer family.</summary>
    public TextTokenizerKind TokenizerKind { get; set; } = TextTokenizerKind.WordPiece;

    /// <summary>vocab.txt (WordPiece) or vocab.json (BPE) path; ignored when <see cref="VocabBytes"/> is set.</summary>
    public string? VocabPath { get; set; }

    /// <summary>Vocabulary file bytes.</summary>
    [JsonIgnore] public byte[]? VocabBytes { get; set; }

    /// <summary>merges.txt path (BPE only); ignored when <see cref="MergesBytes"/> is set.</summary>
    public string? MergesPath { get; set; }

    /// <summary>merges.txt bytes (BPE only).</summary>
    [JsonIgnore] public byte[]? MergesBytes { get; set; }

    /// <summary>Lower-case before WordPiece tokenization (uncased models such as MiniLM).</summary>
    public bool LowerCase { get; set; } = true;

    /// <summary>Start, end and padding token strings for BPE (looked up in vocab.json).</summary>
    public string BpeBosToken { get; set; } = "<s>";
    /// <inheritdoc cref="BpeBosToken"/>
    public string BpeEosToken { get; set; } = "</s>";
    /// <inheritdoc cref="BpeBosToken"/>
    public string BpePadToken { get; set; } = "<pad>";

    /// <summary>BPE only: put a space before a text that does not start with one, so its first word is tokenized as a
    /// word inside a sentence ("ĠA" rather than "A"), as HF's RoBERTa/GPT-2 tokenizers do with add_prefix_space=True.
    /// Default false, HF RoBERTa's default (and what all-roberta-large-v1's tokenizer uses).</summary>
    public bool BpeAddPrefixSpace { get; set; }

    /// <summary>Maximum sequence length including the two special tokens; longer texts are truncated (the start and
    /// end tokens are kept).</summary>
    public int MaxLength { get; set; } = 256;

    /// <summary>Texts per session run (after sorting by length, so each batch pads to its own longest text).</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Input names; token_type_ids is fed (zeros) only when the model declares it.</summary>
    public string InputIdsName { get; set; } = "input_ids";
    /// <inheritdoc cref="InputIdsName"/>
    public string AttentionMaskName { get; set; } = "attention_mask";
    /// <inheritdoc cref="InputIdsName"/>
    public string TokenTypeIdsName { get; set; } = "token_type_ids";

    /// <summary>Output holding the last hidden states [N, L, D] (or, with <see cref="TextPooling.None"/>, [N, D]).</summary>
    public string OutputName { get; set; } = "last_hidden_state";

    /// <summary>Pooling of the token states.</summary>
    public TextPooling Pooling { get; set; } = TextPooling.Mean;

    /// <summary>L2-normalise the pooled embedding.</summary>
    public bool Normalize { get; set; } = true;

    /// <summary>ONNX Runtime intra-op threads; 0 = its default (all cores).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>CUDA device to run on (ML.NET's <c>GpuDeviceId</c>); null = CPU. Needs a <c>-p:Cuda=true</c> build
    /// (Microsoft.ML.OnnxRuntime.Gpu) and an NVIDIA device; see <see cref="OnnxExecution"/>. A runtime setting: it is
    /// not part of the encoder identity (cache keys) and never saved.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int? GpuDeviceId { get; set; }

    /// <summary>When <see cref="GpuDeviceId"/> is set and CUDA cannot start: true runs on CPU after one warning line,
    /// false (ML.NET's default) throws <see cref="InvalidOperationException"/>.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool FallbackToCpu { get; set; }

    /// <summary>Receives one line naming the execution provider that runs (and a fallback's reason); null = only a
    /// fallback warning, on stderr.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public Action<string>? Log { get; set; }
}
