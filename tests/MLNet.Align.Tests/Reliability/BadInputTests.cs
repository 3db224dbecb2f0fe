using MLNet.Align.Projection;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Reliability;

/// <summary>One hostile input and what the user must get. <see cref="Args"/> use {R} for the fixture folder.</summary>
/// <param name="Id">Stable id (test name and table anchor).</param>
/// <param name="Command">The CLI command.</param>
/// <param name="Input">What is wrong with the input, in the user's words.</param>
/// <param name="Args">The command line after `mlnet-align`.</param>
/// <param name="Exit">Expected exit code.</param>
/// <param name="Expect">Fragments the output (stderr for errors, else stdout) must contain.</param>
/// <param name="Result">What the user gets, in words (the table's last column, before the checked fragments).</param>
public sealed record BadInputCase(string Id, string Command, string Input, string[] Args, int Exit, string[] Expect, string Result)
{
    /// <summary>Simulated full disk for writes of files ending with this name (AtomicFile hook), or null.</summary>
    public string? DiskFullOn { get; init; }
    /// <summary>Folder (relative to {R}) that must not exist afterwards (no empty --out left by a refusal).</summary>
    public string? MustNotExist { get; init; }
    /// <summary>Folder (relative to {R}) that must hold no temp file afterwards.</summary>
    public string? NoTempFilesIn { get; init; }
    /// <summary>Extra fragment stdout must contain (the good items of a mixed batch).</summary>
    public string? StdoutHas { get; init; }
    /// <summary>Folder (relative to {R}) whose files must be byte-identical afterwards (a good artefact a failed run
    /// must not replace).</summary>
    public string? Unchanged { get; init; }
    /// <summary>Extra fragment stderr must contain (a warning beside a correct result).</summary>
    public string? StderrHas { get; init; }
    /// <summary>File (relative to {R}) that must not exist afterwards (no partial output set).</summary>
    public string? FileMustNotExist { get; init; }
}

/// <summary>
/// The bad-input suite of issue 10: every case runs the real CLI in process on a real-fixture-derived hostile input and
/// checks the exit code, one clean <c>error:</c> line naming the input (no stack trace: no "   at " frame, no
/// "Unhandled exception"), and where relevant that no partial output or temp file is left. docs/bad-inputs.md is
/// generated from <see cref="Cases"/>, and a test fails when the committed file differs, so the table cannot drift.
/// </summary>
[Collection("cli-console")]
public class BadInputTests(BadInputFixture fx, ITestOutputHelper output) : IClassFixture<BadInputFixture>
{
    private const string Ok = "correct result";

    public static readonly BadInputCase[] Cases =
    [
        // predict
        new("predict-missing-zip", "predict", "--model names a file that does not exist", ["predict", "--model", "{R}/nope.zip", "{R}/good.png"], 1,
            ["error: Classifier zip", "nope.zip' does not exist"], "error naming the zip"),
        new("predict-folder-zip", "predict", "--model is a folder (e.g. the bundle)", ["predict", "--model", "{R}/trained/model", "{R}/good.png"], 1,
            ["is a folder; give the classifier zip"], "error: give the zip from `zeroshot build`"),
        new("predict-truncated-zip", "predict", "--model is a truncated zip", ["predict", "--model", "{R}/truncated.zip", "{R}/good.png"], 1,
            ["truncated.zip' is not a readable zip"], "error naming the zip"),
        new("predict-text-zip", "predict", "--model is a text file named .zip", ["predict", "--model", "{R}/text.zip", "{R}/good.png"], 1,
            ["text.zip' is not a readable zip"], "error naming the zip"),
        new("predict-foreign-zip", "predict", "--model is a zip but not an ML.NET model", ["predict", "--model", "{R}/foreign.zip", "{R}/good.png"], 1,
            ["foreign.zip' is a zip but not a loadable ML.NET model"], "error naming the zip"),
        new("predict-missing-image", "predict", "one image among good ones does not exist", ["predict", "--json", "--model", "{R}/classifier.zip", "{R}/good.png", "{R}/missing.png", "{R}/good2.png"], 1,
            ["error: image '", "missing.png': Image file not found", "1 of 3 images could not be classified"], "the good images are classified, the bad one reported")
            { StdoutHas = "good2.png" },
        new("predict-folder-image", "predict", "an image argument is a folder", ["predict", "--model", "{R}/classifier.zip", "{R}/folder.png"], 1,
            ["folder.png' is a folder, not an image file"], "error naming the path"),
        new("predict-truncated-png", "predict", "a truncated PNG (first 60% of the file)", ["predict", "--json", "--model", "{R}/classifier.zip", "{R}/truncated.png", "{R}/good.png"], 1,
            ["truncated.png' is truncated", "IncompleteInput"], "refused (not classified from a half-grey image); the good one still classified")
            { StdoutHas = "good.png" },
        new("predict-truncated-jpeg", "predict", "a truncated JPEG (first half)", ["predict", "--model", "{R}/classifier.zip", "{R}/truncated.jpg"], 1,
            ["truncated.jpg' is truncated", "IncompleteInput"], "refused"),
        new("predict-not-an-image", "predict", "a text file named .png", ["predict", "--model", "{R}/classifier.zip", "{R}/not-an-image.png"], 1,
            ["not-an-image.png': not a supported image format"], "error naming the file"),
        new("predict-exif-rotated", "predict", "a JPEG stored sideways with EXIF orientation 6 (rotate 90)", ["predict", "--json", "--model", "{R}/classifier.zip", "{R}/exif-rotate90.jpg"], 0,
            ["\"Exif\": \"RightTop\""], Ok + ": classified upright (EXIF applied; ML.NET's LoadImages alone would not)"),
        new("predict-fifo-image", "predict", "an image argument is a named pipe (FIFO), beside a good image", ["predict", "--json", "--model", "{R}/classifier.zip", "{R}/fifo.png", "{R}/good.png"], 1,
            ["fifo.png' is a named pipe (FIFO)", "1 of 2 images could not be classified"], "refused without opening it (open would block forever); the good image still classified")
            { StdoutHas = "good.png" },
        new("predict-pixel-bomb", "predict", "a 254-byte PNG whose header declares 60000 x 60000 pixels, beside a good image", ["predict", "--json", "--model", "{R}/classifier.zip", "{R}/bomb60k.png", "{R}/good.png"], 1,
            ["bomb60k.png' declares 60000 x 60000 pixels (3600 megapixels), over the pixel budget of 100 megapixels"], "refused from its header before decoding (14.4 GB otherwise); the good image still classified")
            { StdoutHas = "good.png" },
        new("predict-top-0", "predict", "--top 0", ["predict", "--top", "0", "--model", "{R}/classifier.zip", "{R}/good.png"], 1,
            ["--top must be at least 1, got 0"], "error before the zip is loaded"),

        // train
        new("train-epochs-0", "train", "--epochs 0", ["train", "--store", "{R}/store6", "--out", "{R}/out-epochs0", "--epochs", "0"], 1,
            ["error: --epochs must be positive, got 0"], "error before any work; no --out folder created") { MustNotExist = "out-epochs0" },
        new("train-negative-lr", "train", "--lr -0.001", ["train", "--store", "{R}/store6", "--out", "{R}/out-lr", "--lr", "-0.001"], 1,
            ["error: --lr must be positive and finite, got -0.001"], "error before any work; no --out folder created") { MustNotExist = "out-lr" },
        new("train-batch-1", "train", "--batch-size 1 (InfoNCE needs negatives)", ["train", "--store", "{R}/store6", "--out", "{R}/out-b1", "--batch-size", "1"], 1,
            ["error: --batch-size must be at least 2 (InfoNCE needs negatives), got 1"], "error before any work") { MustNotExist = "out-b1" },
        new("train-malformed-config", "train", "--config is malformed JSON (trailing comma)", ["train", "--store", "{R}/store6", "--out", "{R}/out-cfg", "--config", "{R}/malformed.json"], 1,
            ["malformed.json' is not valid AlignmentOptions JSON (line 1"], "error naming file and line") { MustNotExist = "out-cfg" },
        new("train-missing-config", "train", "--config does not exist", ["train", "--store", "{R}/store6", "--out", "{R}/out-cfg2", "--config", "{R}/nope.json"], 1,
            ["--config '", "nope.json' does not exist"], "error naming the file") { MustNotExist = "out-cfg2" },
        new("train-missing-store", "train", "--store does not exist", ["train", "--store", "{R}/no-store", "--out", "{R}/out-ms"], 1,
            ["no-store' does not exist (write one with `mlnet-align embed`)"], "error naming the folder") { MustNotExist = "out-ms" },
        new("train-empty-store", "train", "--store is an empty folder", ["train", "--store", "{R}/empty-folder", "--out", "{R}/out-es"], 1,
            ["No embedding store in", "manifest.json not found"], "error naming the folder") { MustNotExist = "out-es" },
        new("train-partial-store", "train", "--store is partial (embed interrupted)", ["train", "--store", "{R}/store-partial", "--out", "{R}/out-ps"], 1,
            ["is partial", "re-run the embedding with the same options to resume it"], "error saying how to finish it") { MustNotExist = "out-ps" },
        new("train-shard-deleted", "train", "--store lost a shard file", ["train", "--store", "{R}/store-shard-deleted", "--out", "{R}/out-sd"], 1,
            ["is missing", "Re-run the embedding with the same options to rebuild it"], "error naming the shard") { MustNotExist = "out-sd" },
        new("train-one-row-store", "train", "--store holds one pair", ["train", "--store", "{R}/store1", "--out", "{R}/out-1"], 1,
            ["The data has 1 pair(s) in 1 group(s)", "too few to hold out at least 2 groups for validation"], "error before any work") { MustNotExist = "out-1" },
        new("train-store-and-pairs", "train", "both --store and --pairs", ["train", "--store", "{R}/store6", "--pairs", "{R}/pairs6.tsv", "--out", "{R}/out-sp"], 1,
            ["Give exactly one of --store DIR or --pairs FILE"], "error") { MustNotExist = "out-sp" },
        new("train-resume-mismatch", "train", "--resume with another --lr than the checkpoint", ["train", "--store", "{R}/store6", "--out", "{R}/trained", "--resume", "--lr", "0.5", "--batch-size", "2", "--epochs", "2"], 1,
            ["was written with different alignment options"], "error: resume with the same options or start a new run"),
        new("train-disk-full-checkpoint", "train", "the disk fills while the checkpoint is written", ["train", "--store", "{R}/store6", "--out", "{R}/out-full", "--projector", "pooled", "--batch-size", "2", "--epochs", "1"], 1,
            ["error: No space left on device"], "error; no checkpoint.bin.tmp left") { DiskFullOn = "checkpoint.bin", NoTempFilesIn = "out-full/checkpoints" },
        new("train-lr-1000", "train", "--lr 1000: training diverges (the loss becomes NaN)", ["train", "--store", "{R}/store6", "--out", "{R}/out-diverge", "--lr", "1000", "--projector", "pooled", "--batch-size", "2", "--epochs", "20"], 1,
            ["error: Training diverged in epoch", "Likely cause: the learning rate is too high (LearningRate 1000", "Nothing was saved from the diverged state"],
            "error naming epoch, step and the learning rate; no model written") { MustNotExist = "out-diverge/model", NoTempFilesIn = "out-diverge" },
        new("train-lr-1000-over-good", "train", "--lr 1000 into an --out that holds a good model", ["train", "--store", "{R}/store6", "--out", "{R}/trained-good", "--lr", "1000", "--projector", "pooled", "--batch-size", "2", "--epochs", "20"], 1,
            ["error: Training diverged in epoch"], "error; the good model in --out is left byte-identical") { Unchanged = "trained-good/model" },
        new("train-config-misspelt-key", "train", "--config has a misspelt key (LerningRate)", ["train", "--store", "{R}/store6", "--out", "{R}/out-typo", "--config", "{R}/misspelt-key.json"], 1,
            ["misspelt-key.json' is not valid AlignmentOptions JSON: unknown key 'Training.LerningRate' (did you mean 'LearningRate'?)", "the known keys of Training are Epochs, BatchSize, LearningRate"],
            "error naming the key and listing the known ones; no training with defaults") { MustNotExist = "out-typo" },
        new("train-config-nan-weight-decay", "train", "--config sets WeightDecay to NaN", ["train", "--store", "{R}/store6", "--out", "{R}/out-nanwd", "--config", "{R}/nan-weight-decay.json"], 1,
            ["nan-weight-decay.json': WeightDecay must be finite and >= 0, got NaN"], "error before any work") { MustNotExist = "out-nanwd" },
        new("train-config-nan-min-lr", "train", "--config sets MinLearningRate to NaN", ["train", "--store", "{R}/store6", "--out", "{R}/out-nanmin", "--config", "{R}/nan-min-lr.json"], 1,
            ["nan-min-lr.json': MinLearningRate must be >= 0 and finite, got NaN"], "error before any work") { MustNotExist = "out-nanmin" },
        new("train-config-infinite-lr", "train", "--config sets LearningRate to Infinity", ["train", "--store", "{R}/store6", "--out", "{R}/out-inflr", "--config", "{R}/infinite-lr.json"], 1,
            ["infinite-lr.json': LearningRate must be positive and finite, got "], "error before any work") { MustNotExist = "out-inflr" },
        new("train-config-negative-warmup-lr", "train", "--config sets WarmupStartLearningRate to -0.001", ["train", "--store", "{R}/store6", "--out", "{R}/out-negwarm", "--config", "{R}/negative-warmup-lr.json"], 1,
            ["negative-warmup-lr.json': WarmupStartLearningRate must be >= 0 and finite, got -0.001"], "error before any work") { MustNotExist = "out-negwarm" },
        new("train-config-nan-grad-norm", "train", "--config sets MaxGradientNorm to NaN", ["train", "--store", "{R}/store6", "--out", "{R}/out-nangn", "--config", "{R}/nan-grad-norm.json"], 1,
            ["nan-grad-norm.json': MaxGradientNorm must be positive and finite, or null for no clipping, got NaN"], "error before any work") { MustNotExist = "out-nangn" },
        new("train-config-threads-0", "train", "--config sets TorchThreads to 0 (libtorch aborts the process)", ["train", "--store", "{R}/store6", "--out", "{R}/out-t0", "--config", "{R}/threads-0.json"], 1,
            ["threads-0.json': TorchThreads must be in [1, 1024] or null", "got 0"], "error before torch sees it") { MustNotExist = "out-t0" },
        new("train-config-threads-negative", "train", "--config sets TorchThreads to -4", ["train", "--store", "{R}/store6", "--out", "{R}/out-tn", "--config", "{R}/threads-negative.json"], 1,
            ["TorchThreads must be in [1, 1024] or null", "got -4"], "error before torch sees it") { MustNotExist = "out-tn" },
        new("train-batch-int-max", "train", "--batch-size 2147483647", ["train", "--store", "{R}/store6", "--out", "{R}/out-bmax", "--batch-size", "2147483647"], 1,
            ["error: --batch-size must be in [2, 32768]", "got 2147483647"], "error naming the bound, before any work") { MustNotExist = "out-bmax" },
        new("train-embedding-dim-huge", "train", "--embedding-dim 200000000", ["train", "--store", "{R}/store6", "--out", "{R}/out-emax", "--embedding-dim", "200000000"], 1,
            ["error: --embedding-dim must be in [1, 16384]", "got 200000000"], "error naming the bound, before any work") { MustNotExist = "out-emax" },
        new("train-resume-flipped-checkpoint", "train", "--resume from a checkpoint with 8 flipped bytes", ["train", "--store", "{R}/store6", "--out", "{R}/trained-flipped", "--resume", "--batch-size", "2", "--epochs", "3"], 1,
            ["checkpoint.bin' is corrupt: the SHA-256 of its contents is", "delete it and start a new run"], "error naming the checkpoint; nothing resumed") { Unchanged = "trained-flipped/model" },
        new("train-disk-full-bundle", "train", "the disk fills while the bundle is written", ["train", "--store", "{R}/store6", "--out", "{R}/out-full2", "--batch-size", "2", "--epochs", "1"], 1,
            ["error: No space left on device"], "error; no partial model folder left") { DiskFullOn = "weights.bin", MustNotExist = "out-full2/model", NoTempFilesIn = "out-full2" },

        new("train-nan-store", "train", "--store holds a NaN embedding (manifest checksum consistent)", ["train", "--store", "{R}/store-nan", "--out", "{R}/out-nan", "--projector", "pooled", "--batch-size", "2", "--epochs", "1"], 1,
            ["holds a non-finite value: shard 0 (", "shard-00000.bin), row 0 of the shard (store row 0): image embedding column 7 is NaN"], "error naming the shard, row and column; nothing trained on it"),
        new("train-tampered-store", "train", "--store has a shard edited after it was written", ["train", "--store", "{R}/store-tampered", "--out", "{R}/out-tampered", "--batch-size", "2", "--epochs", "1"], 1,
            ["does not match its manifest: Shard 0 (", "shard-00000.bin) has SHA-256"], "error naming the shard and both checksums"),

        // index / search
        new("index-hostile-folder", "index", "a photo folder holding a truncated PNG, a text file named .png, a pixel bomb and a named pipe beside one good image",
            ["index", "--model", "{R}/trained/model", "--images", "{R}/album", "--index", "{R}/album-index"], 0,
            ["1 new, 0 changed, 0 moved, 0 deleted, 4 skipped", "1 image indexed"], "the good image indexed; each bad file reported on stderr with its reason and never indexed")
            { StderrHas = "fifo.png: a named pipe (FIFO)" },
        new("index-missing-folder", "index", "--images names a folder that does not exist", ["index", "--model", "{R}/trained/model", "--images", "{R}/no-album", "--index", "{R}/idx-missing"], 1,
            ["error: Image folder not found", "no-album"], "error naming the folder; no index folder created")
            { MustNotExist = "idx-missing" },
        new("search-no-query", "search", "no --text, --image or --like", ["search", "--index", "{R}/album-index"], 1,
            ["Give at least one --text, --image or --like"], "error before the index is opened"),
        new("search-bad-date", "search", "--after is not a date", ["search", "--index", "{R}/album-index", "--text", "an apple", "--after", "last week"], 1,
            ["--after 'last week' is not a date"], "error naming the option and the accepted forms"),
        new("search-no-index", "search", "--index names a folder with no index", ["search", "--index", "{R}/no-images", "--text", "an apple"], 1,
            ["No image index in", "build one with 'mlnet-align index'"], "error naming the folder"),

        // digest
        new("digest-tampered-store", "digest", "a store with a shard edited after it was written", ["digest", "{R}/store-tampered"], 1,
            ["does not match its manifest (1 of 2 shard(s))", "shard-00000.bin) has SHA-256"], "error naming the shard; exit 1 (no digest printed)"),
        new("digest-good-store", "digest", "an intact store", ["digest", "{R}/store6"], 0,
            ["manifest: verified (2 shard(s) match their SHA-256)"], Ok + ": the digest and that the store matches its manifest"),

        // embed
        new("embed-fifo-pairs", "embed", "--pairs is a named pipe (FIFO)", ["embed", "--pairs", "{R}/fifo-pairs.tsv", "--out", "{R}/emb-fifo"], 1,
            ["fifo-pairs.tsv' is a named pipe (FIFO)", "not a regular file"], "error without opening it (open would block forever)") { MustNotExist = "emb-fifo" },
        new("embed-dev-zero-pairs", "embed", "--pairs is /dev/zero", ["embed", "--pairs", "/dev/zero", "--out", "{R}/emb-zero"], 1,
            ["Pairs file '/dev/zero' is a character device"], "error without reading (it never ends: memory grew to 4 GB)") { MustNotExist = "emb-zero" },
        new("embed-pixel-bomb", "embed", "one image of the pairs declares 60000 x 60000 pixels", ["embed", "--pairs", "{R}/pairs-bomb.tsv", "--out", "{R}/emb-bomb"], 0,
            ["Rows: 3 stored of 4 input rows", "Skipped: 1"], Ok + ": the 3 good pairs stored, the bomb skipped and listed (never decoded)"),
        new("embed-image-std-tiny", "embed", "--image-std 1e-40 for a custom ONNX image encoder (pixels become infinities)", ["embed", "--pairs", "{R}/pairs6.tsv", "--out", "{R}/emb-std",
                "--image-encoder", "{BIN}/DnnImageModels/ResNet18Onnx/ResNet18.onnx", "--image-output", "Pooling395_Output_0", "--image-std", "1e-40,1e-40,1e-40"], 1,
            ["produced NaN for a white probe image", "Std 1E-40,1E-40,1E-40", "--image-std"], "error before any image is stored (a NaN store otherwise)") { MustNotExist = "emb-std" },
        new("embed-merge-disk-full", "embed merge", "the disk fills while a merged shard is copied", ["embed", "merge", "--out", "{R}/merged-full", "{R}/store-p0", "{R}/store-p1"], 1,
            ["No space left on device", "merged-full/shard-00001.bin"], "error naming the shard being written; no temp shard left")
            { DiskFullOn = "shard-00001.bin", NoTempFilesIn = "merged-full", FileMustNotExist = "merged-full/manifest.json" },

        // select
        new("select-huge-bootstrap", "select", "--bootstrap 100000000", ["select", "--pairs", "{R}/pairs6.tsv", "--image-encoders", "resnet18", "--text-encoders", "minilm", "--bootstrap", "100000000", "--out", "{R}/sel-boot"], 1,
            ["Bootstrap resamples (--bootstrap) must be in [0, 100000], got 100000000"], "error before any encoding (10 GB and counting otherwise)") { MustNotExist = "sel-boot" },
        new("select-disk-full", "select", "the disk fills while the outputs are written", ["select", "--pairs", "{R}/pairs6.tsv", "--image-encoders", "resnet18", "--text-encoders", "minilm", "--bootstrap", "5", "--out", "{R}/sel-full"], 1,
            ["No space left on device", "selection.md"], "error; no selection.json without the rest, no temp file")
            { DiskFullOn = "selection.md", FileMustNotExist = "sel-full/selection.json", NoTempFilesIn = "sel-full" },

        // bench-pool
        new("bench-pool-nan-noise", "bench-pool", "--noise NaN", ["bench-pool", "--like", "{R}/store6", "--rows", "10", "--noise", "NaN", "--out", "{R}/pool-nan"], 1,
            ["--noise must be a finite number >= 0, got NaN"], "error before anything is written") { MustNotExist = "pool-nan" },
        new("bench-pool-negative-rows", "bench-pool", "--rows -5", ["bench-pool", "--like", "{R}/store6", "--rows", "-5", "--out", "{R}/pool-neg"], 1,
            ["--rows must be in [1, 20000000], got -5"], "error before anything is written") { MustNotExist = "pool-neg" },

        new("embed-latin1-pairs", "embed", "a Latin-1 pairs file (caption 'café crème')", ["embed", "--pairs", "{R}/pairs-latin1.tsv", "--out", "{R}/emb-latin"], 1,
            ["pairs-latin1.tsv, line 4, byte", "not valid UTF-8 (byte 0xE9)", "Latin-1"], "error naming line and byte, before any encoding"),
        new("embed-truncated-strict", "embed", "a truncated PNG with --strict", ["embed", "--strict", "--pairs", "{R}/pairs-truncated-image.tsv", "--out", "{R}/emb-strict"], 1,
            ["line 5, column 'image'", "truncated.png' is truncated"], "error naming line, column and file"),
        new("embed-truncated-skip", "embed", "a truncated PNG without --strict", ["embed", "--pairs", "{R}/pairs-truncated-image.tsv", "--out", "{R}/emb-skip"], 0,
            ["Skipped: 1", "image cannot be encoded"], Ok + ": the 3 good pairs stored, the truncated one skipped and listed"),
        new("embed-non-onnx-text-encoder", "embed", "--text-encoder is not an ONNX file", ["embed", "--pairs", "{R}/pairs6.tsv", "--out", "{R}/emb-nonnx", "--text-encoder", "{R}/not-onnx.onnx", "--text-vocab", "{R}/vocab.txt"], 1,
            ["--text-encoder '", "not-onnx.onnx' cannot be loaded as an ONNX model", "InvalidProtobuf"], "error naming the option and file"),
        new("embed-wrong-image-size", "embed", "--image-size 100 for a model with a fixed 224 x 224 input", ["embed", "--strict", "--pairs", "{R}/pairs6.tsv", "--out", "{R}/emb-size",
                "--image-encoder", "{BIN}/DnnImageModels/ResNet18Onnx/ResNet18.onnx", "--image-output", "Pooling395_Output_0", "--image-size", "100"], 1,
            ["ResNet18.onnx' loads but rejects its input at --image-size 100", "'Input247' [1, 3, 224, 224]"], "error naming the option, the model's input shape and the size given"),

        // zeroshot
        new("zeroshot-eval-no-images", "zeroshot eval", "class folders with no images", ["zeroshot", "eval", "--model", "{R}/trained", "--image-folder", "{R}/no-images", "--cache", "{R}/cache"], 1,
            ["no images", "nothing to evaluate"], "error instead of 0.00% with n = 0"),
        new("zeroshot-build-train-out", "zeroshot build", "--model is train's --out folder (the bundle is in DIR/model)", ["zeroshot", "build", "--model", "{R}/trained", "--classes", "{R}/classes.txt", "--templates", "icons", "--out", "{R}/built.zip"], 0,
            ["Saved 8-class zero-shot classifier"], Ok + ": DIR/model is used"),
        new("zeroshot-build-fifo-classes", "zeroshot build", "--classes is a named pipe (FIFO)", ["zeroshot", "build", "--model", "{R}/trained", "--classes", "{R}/fifo-classes.txt", "--out", "{R}/zs-fifo.zip"], 1,
            ["Class list file '", "fifo-classes.txt' is a named pipe (FIFO)"], "error without opening it") { FileMustNotExist = "zs-fifo.zip" },
        new("zeroshot-build-descriptions-nomatch", "zeroshot build", "--descriptions whose class names match no class", ["zeroshot", "build", "--model", "{R}/trained", "--classes", "{R}/classes.txt", "--templates", "icons",
                "--descriptions", "{R}/desc-nomatch.json", "--out", "{R}/zs-desc.zip"], 1,
            ["none of its 2 described class(es) ('harp', 'zebra') matches a class of the class list"], "error listing both sides, instead of silently unused descriptions") { FileMustNotExist = "zs-desc.zip" },
        new("zeroshot-build-descriptions-partial", "zeroshot build", "--descriptions with one class that matches and one that does not", ["zeroshot", "build", "--model", "{R}/trained", "--classes", "{R}/classes.txt", "--templates", "icons",
                "--descriptions", "{R}/desc-partial.json", "--out", "{R}/zs-partial.zip"], 0,
            ["Saved 8-class zero-shot classifier"], Ok + ", with a warning naming the unmatched class")
            { StderrHas = "warning: --descriptions: 1 described class(es) match no class of --classes and are unused: 'zebra'." },
        new("zeroshot-build-not-bundle", "zeroshot build", "--model is a folder without a bundle", ["zeroshot", "build", "--model", "{R}/empty-folder", "--classes", "{R}/classes.txt", "--out", "{R}/x.zip"], 1,
            ["is not an aligned-model bundle", "where `train --out` writes it"], "error naming both places looked at"),

        // demo
        new("demo-missing-photo-pairs", "demo", "--photo-pairs names a file that does not exist", ["demo", "--no-install", "--out", "{R}/out-demo-photo", "--photo-pairs", "{R}/nope.csv"], 2,
            ["error: --photo-pairs: '", "nope.csv' does not exist"], "error before any data is prepared; no --out folder created") { MustNotExist = "out-demo-photo" },
        new("demo-unknown-source", "demo", "--sources names a source that does not exist", ["demo", "--no-install", "--out", "{R}/out-demo-src", "--sources", "tuxpaint,apple"], 1,
            ["error: unknown source 'apple'", "known: tuxpaint, emoji, openclipart, gcompris, wallpapers, twemoji"], "one error line listing the known sources; no --out folder created") { MustNotExist = "out-demo-src" },

        // data
        new("data-unknown-source", "data prepare", "--sources names a source that does not exist", ["data", "prepare", "--no-install", "--out", "{R}/out-data-src", "--sources", "emoji,facebook"], 1,
            ["error: unknown source 'facebook'", "known: tuxpaint"], "one error line listing the known sources; no data folder created") { MustNotExist = "out-data-src" },

        // bench (the results file goes to a folder of its own, which must not appear)
        new("bench-missing-pairs", "bench", "--pairs names a file that does not exist", ["bench", "--pairs", "{R}/no-such-pairs.tsv", "--suites", "train", "--out", "{R}/out-bench-1/bench.json"], 1,
            ["error: Pairs file not found", "no-such-pairs.tsv"], "error naming the file; no results written") { MustNotExist = "out-bench-1" },
        new("bench-unknown-suite", "bench", "--suites names a suite that does not exist", ["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "train,speed", "--out", "{R}/out-bench-2/bench.json"], 1,
            ["error: Unknown suite(s): speed", "choose from encode, text, train, store, serve"], "one error line listing the suites; no results written") { MustNotExist = "out-bench-2" },
        new("bench-unknown-train-mode", "bench", "--train-modes names a mode that does not exist", ["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "train", "--train-modes", "tokn", "--out", "{R}/out-bench-3/bench.json"], 1,
            ["error: Unknown train mode(s): tokn", "choose from pooled, token"], "one error line listing the modes; no results written") { MustNotExist = "out-bench-3" },
        new("bench-bad-store-size", "bench", "--store-sizes holds a value that is not a whole number", ["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "store", "--store-sizes", "10000,1e6", "--out", "{R}/out-bench-4/bench.json"], 1,
            ["error: --store-sizes: '1e6' is not a positive number of pairs"], "error naming the value; no results written") { MustNotExist = "out-bench-4" },
        new("bench-zero-rounds", "bench", "--rounds 0", ["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "train", "--rounds", "0", "--out", "{R}/out-bench-5/bench.json"], 1,
            ["error: --rounds must be >= 1, got 0"], "error naming the option; no results written") { MustNotExist = "out-bench-5" },
    ];

    public static IEnumerable<object[]> CaseIds => Cases.Select(c => new object[] { c.Id });

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Bad_input_gets_a_clear_outcome(string id)
    {
        var c = Cases.Single(x => x.Id == id);
        var args = c.Args.Select(a => a.Replace("{R}", fx.Root).Replace("{BIN}", AppContext.BaseDirectory.TrimEnd('/'))).ToArray();
        var before = c.Unchanged is null ? null : Snapshot(fx.P(c.Unchanged));
        AtomicFile.DiskFullAfterBytes.Value = c.DiskFullOn is null ? null : new AtomicFile.DiskFullRule(c.DiskFullOn, 100);
        (int exit, string stdout, string stderr) result;
        try { result = BadInputFixture.Cli(args); }
        finally { AtomicFile.DiskFullAfterBytes.Value = null; }
        var (exit, stdout, stderr) = result;
        if (c.Unchanged != null) Assert.Equal(before, Snapshot(fx.P(c.Unchanged)));
        output.WriteLine($"exit {exit}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        Assert.Equal(c.Exit, exit);
        string checkedText = c.Exit == 0 ? stdout : stderr;
        foreach (var fragment in c.Expect) Assert.Contains(fragment.Replace("{R}", fx.Root), checkedText);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
        if (c.Exit != 0) Assert.Contains("error: ", stderr);
        if (c.StdoutHas != null) Assert.Contains(c.StdoutHas, stdout);
        if (c.StderrHas != null) Assert.Contains(c.StderrHas, stderr);
        if (c.FileMustNotExist != null) Assert.False(File.Exists(fx.P(c.FileMustNotExist)), $"{c.FileMustNotExist} was left behind");
        if (c.MustNotExist != null) Assert.False(Directory.Exists(fx.P(c.MustNotExist)), $"{c.MustNotExist} was left behind");
        if (c.NoTempFilesIn != null && Directory.Exists(fx.P(c.NoTempFilesIn)))
            Assert.Empty(Directory.EnumerateFileSystemEntries(fx.P(c.NoTempFilesIn), "*tmp*", SearchOption.AllDirectories));
    }

    /// <summary>Every file under <paramref name="dir"/> (relative path and SHA-256), sorted.</summary>
    private static string Snapshot(string dir)
    {
        Assert.True(Directory.Exists(dir), $"{dir} is missing");
        return string.Join("\n", Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => $"{Path.GetRelativePath(dir, f)} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))}"));
    }

    /// <summary>docs/bad-inputs.md is exactly what <see cref="Render"/> makes of <see cref="Cases"/>. To update it after
    /// changing the cases: MLNET_ALIGN_UPDATE_DOCS=1 dotnet test --filter BadInputTests.</summary>
    [Fact]
    public void Bad_inputs_doc_matches_the_cases()
    {
        var path = Path.Combine(RepoRoot.Path, "docs", "bad-inputs.md");
        var expected = Render();
        if (Environment.GetEnvironmentVariable("MLNET_ALIGN_UPDATE_DOCS") == "1") File.WriteAllText(path, expected);
        Assert.True(File.Exists(path), $"{path} is missing; regenerate it with MLNET_ALIGN_UPDATE_DOCS=1.");
        Assert.Equal(expected, File.ReadAllText(path).ReplaceLineEndings("\n"));
    }

    /// <summary>The markdown table of every case: command, input, exit code, outcome and the checked message fragments.</summary>
    public static string Render()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append("# Bad inputs: what you get\n\n");
        sb.Append("Generated from the test cases in `tests/MLNet.Align.Tests/Reliability/BadInputTests.cs` (every row is a test that\n");
        sb.Append("runs the CLI on a hostile input made from a real fixture file and checks the exit code and the quoted message\n");
        sb.Append("fragments); `BadInputTests.Bad_inputs_doc_matches_the_cases` fails when this file differs from the cases. Regenerate\n");
        sb.Append("with `MLNET_ALIGN_UPDATE_DOCS=1 dotnet test tests/MLNet.Align.Tests -c Release --filter BadInputTests`.\n\n");
        sb.Append("Every error is one `error: ...` line on stderr, no stack trace, exit code 1; a refused `train` leaves no `--out` folder.\n\n");
        sb.Append($"{Cases.Length} cases: {Cases.Count(c => c.Exit != 0)} clear errors, {Cases.Count(c => c.Exit == 0)} correct results.\n\n");
        sb.Append("| # | command | input | exit | what you get | message contains |\n| --- | --- | --- | --- | --- | --- |\n");
        int i = 1;
        foreach (var c in Cases)
            sb.Append($"| {i++} | `{c.Command}` | {Escape(c.Input)} | {c.Exit} | {Escape(c.Result)} | {string.Join("; ", c.Expect.Select(f => $"`{f.Replace("`", "'").Replace("|", "\\|")}`"))} |\n");
        return sb.ToString();
    }

    private static string Escape(string s) => s.Replace("|", "\\|");

}
