using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;

namespace MLNet.Align.Bench;

/// <summary>
/// The bench's <c>serve</c> suite: PredictionEngine single-image latency of the zero-shot zip against the encoder-only
/// zip (the same image encoder estimator saved alone), both loaded back with <c>mlContext.Model.Load</c>, on the same
/// real images, interleaved image by image (order rotated per image), after a warm-up. Both are built twice: with the
/// encoder's ONNX stages fused (<see cref="ResNet18MLNetImageEncoder.FuseOnnxStages"/>, the default) and separate
/// (the chain before), so before / after come from the same run under the same load. Each round gives one ratio,
/// median(zero-shot) / median(encoder-only); the suite reports min / median / max over the rounds. A per-stage breakdown times PredictionEngines over prefixes of the loaded zero-shot chain (each prefix
/// reads only its last column, so ML.NET computes exactly that prefix), interleaved the same way: a stage's cost is the
/// median over images of prefix(k) - prefix(k-1) on the same image.
/// </summary>
internal static class BenchServe
{
    public static JsonObject Run(IReadOnlyList<string> images, int rounds, string workDir, Action<string> log)
    {
        var ml = new MLContext(seed: 0);
        string dir = Path.Combine(workDir, "serve");
        Directory.CreateDirectory(dir);

        // Same projector as the demo's recipes (PooledMlp(512), 512 / 384 inputs); seeded, untrained: latency does not
        // depend on the weights. Ten classes (the Fashion-MNIST names), unit-norm seeded class vectors.
        using var projector = new AlignedModel(ProjectorOptions.PooledMlp(512), 512, 384, seed: 1);
        string[] names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
        var rng = new Random(2);
        var m = new float[names.Length * projector.EmbeddingDimension];
        for (int i = 0; i < m.Length; i++) m[i] = (float)rng.NextGaussian();
        var matrix = new EmbeddingMatrix(m, names.Length, projector.EmbeddingDimension);
        for (int i = 0; i < names.Length; i++) System.Numerics.Tensors.TensorPrimitives.Divide(matrix.Row(i), System.Numerics.Tensors.TensorPrimitives.Norm(matrix.Row(i)), matrix.Row(i));
        var classes = new ClassEmbeddings(names, matrix, Enumerable.Repeat(1, names.Length).ToArray(), Renormalized: true);

        var empty = ml.Data.LoadFromEnumerable(new List<ZeroShotImageInput>());
        var inputs = images.Select(p => new ZeroShotImageInput { ImagePath = Path.GetFullPath(p) }).ToArray();
        var after = Side.Build(ml, empty, dir, "fused", fuse: true, projector, classes);
        var before = Side.Build(ml, empty, dir, "separate", fuse: false, projector, classes);
        Side[] sides = [after, before];
        log($"serve suite: {inputs.Length} images, {after.Stages.Count} + {before.Stages.Count} chain prefixes, {rounds} round(s)");
        // Warm-up: every engine on the first 20 images.
        foreach (var x in inputs.Take(20))
            foreach (var side in sides) { side.Encoder(x); side.ZeroShot(x); foreach (var st in side.Stages) st.Predict(x); }

        var load = new List<string>();
        var sw = new Stopwatch();
        double Time(Func<ZeroShotImageInput, int> f, ZeroShotImageInput x) { sw.Restart(); f(x); return sw.Elapsed.TotalMilliseconds; }
        var fusedGain = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            log($"serve suite: round {r + 1}/{rounds}");
            load.Add(LoadAverage());
            // The four zips, rotated per image so that none is always first.
            var engines = new (Side Side, bool ZeroShot)[] { (after, false), (after, true), (before, false), (before, true) };
            var ms = engines.Select(_ => new double[inputs.Length]).ToArray();
            for (int i = 0; i < inputs.Length; i++)
                for (int j = 0; j < engines.Length; j++)
                {
                    int e = (j + i + r) % engines.Length;
                    var (side, zs) = engines[e];
                    ms[e][i] = Time(zs ? side.ZeroShot : side.Encoder, inputs[i]);
                }
            after.AddRound(ms[0], ms[1]); before.AddRound(ms[2], ms[3]);
            fusedGain.Add(Median(ms[1]) / Median(ms[3]));
            // Stage prefixes of both chains: rotated order per image.
            foreach (var side in sides)
            {
                var per = side.Stages.Select(_ => new double[inputs.Length]).ToArray();
                for (int i = 0; i < inputs.Length; i++)
                    for (int j = 0; j < side.Stages.Count; j++)
                    {
                        int st = (j + i) % side.Stages.Count;
                        per[st][i] = Time(side.Stages[st].Predict, inputs[i]);
                    }
                for (int st = 0; st < side.Stages.Count; st++)
                    side.StageMs[st].Add(st == 0 ? Median(per[0]) : Median(per[st].Zip(per[st - 1], (a, b) => a - b).ToArray()));
            }
        }
        load.Add(LoadAverage());

        var result = new JsonObject
        {
            ["what"] = "PredictionEngine.Predict latency per image (ms), zips loaded with mlContext.Model.Load; four zips (encoder-only and zero-shot, each with the encoder's ONNX stages fused and separate) timed on the same image one after the other, order rotated per image, after a 20-image warm-up",
            ["encoder_only_zip"] = "ResNet18MLNetImageEncoder.CreateEstimator alone (image path -> image_embedding [512]), read: image_embedding",
            ["zero_shot_zip"] = "ZeroShotClassifierIO.BuildAndSave: PooledMlp(512) projector (512 -> 512) + head fused in one ONNX, 10 classes; read: Score, PredictedClass, PredictedLabel (ZeroShotPrediction)",
            ["ratio_how"] = "per round: median(zero-shot ms) / median(encoder-only ms) over the images; 'paired' = median over images of zero-shot ms / encoder-only ms on the same image",
            ["images"] = inputs.Length,
            ["loadavg_per_round"] = new JsonArray(load.Select(l => (JsonNode)l).ToArray()),
            ["fused"] = after.ToJson("ResNet18MLNetImageEncoder.FuseOnnxStages = true (default): alpha composite + ResNetPreprocess + ResNet18 in one ApplyOnnxModel, no CopyColumns"),
            ["separate"] = before.ToJson("FuseOnnxStages = false: alpha composite, ResNetPreprocess, ResNet18 as three ApplyOnnxModel stages with two CopyColumns (the chain before this change)"),
            ["ratio_zero_shot_fused_vs_zero_shot_separate"] = Stats.Of(fusedGain),
            ["stages_how"] = "median over images of prefix(k) - prefix(k-1) on the same image (first row: the whole first prefix); prefixes of the loaded zero-shot chain, each engine reading only its last column (so ML.NET computes only that prefix); noisy on a loaded machine (can be slightly negative)",
        };
        foreach (var side in sides) side.Dispose();
        return result;
    }

    /// <summary>One encoder configuration: its encoder-only and zero-shot zips, loaded, with PredictionEngines.</summary>
    private sealed class Side : IDisposable
    {
        private readonly List<IDisposable> _own = [];
        private readonly List<double> _enc = [], _zs = [], _ratio = [], _paired = [];
        public Func<ZeroShotImageInput, int> Encoder { get; private set; } = null!;
        public Func<ZeroShotImageInput, int> ZeroShot { get; private set; } = null!;
        public List<(string Name, Func<ZeroShotImageInput, int> Predict)> Stages { get; } = [];
        public List<double>[] StageMs { get; private set; } = [];
        public string[] Chain { get; private set; } = [];

        public static Side Build(MLContext ml, IDataView empty, string dir, string name, bool fuse, AlignedModel projector, ClassEmbeddings classes)
        {
            var side = new Side();
            string encoderZip = Path.Combine(dir, $"encoder-only-{name}.zip"), zeroShotZip = Path.Combine(dir, $"zero-shot-{name}.zip");
            var encoder = new ResNet18MLNetImageEncoder { FuseOnnxStages = fuse };
            var encoderOnly = encoder.CreateEstimator(ml.Transforms, ZeroShotClassifierEstimator.ImageEmbeddingColumnName, nameof(ZeroShotImageInput.ImagePath), null).Fit(empty);
            ml.Model.Save(encoderOnly, empty.Schema, encoderZip);
            foreach (var t in Flatten(encoderOnly)) (t as IDisposable)?.Dispose();
            ZeroShotClassifierIO.BuildAndSave(ml, projector, classes, zeroShotZip, new ZeroShotClassifierEstimator.Options { ImageEncoder = encoder });

            var encLoaded = ml.Model.Load(encoderZip, out _);
            var zsLoaded = ml.Model.Load(zeroShotZip, out _);
            var encEngine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, FloatOut>(encLoaded, outputSchemaDefinition: FloatOut.For(ZeroShotClassifierEstimator.ImageEmbeddingColumnName));
            var zsEngine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(zsLoaded);
            side._own.Add(encEngine); side._own.Add(zsEngine);
            side.Encoder = x => encEngine.Predict(x).Value.Length;
            side.ZeroShot = x => zsEngine.Predict(x).Score.Length;
            var chain = Flatten(zsLoaded).ToArray();
            side.Chain = chain.Select(t => t.GetType().Name).ToArray();
            side._own.AddRange(Flatten(encLoaded).Concat(chain).OfType<IDisposable>());

            // Prefix engines over the loaded zero-shot chain, one per stage that adds a column PredictionEngine can read.
            var schema = empty.Schema;
            var pending = new List<string>();
            for (int k = 0; k < chain.Length; k++)
            {
                var next = chain[k].GetOutputSchema(schema);
                var added = next.Where(c => schema.GetColumnOrNull(c.Name) is not { } old || old.Index != c.Index).ToList();
                schema = next;
                pending.Add(chain[k].GetType().Name.Replace("Transformer", "", StringComparison.Ordinal));
                var col = added.FirstOrDefault(c => c.Name == ZeroShotHeadNames.Score && c.Type is VectorDataViewType);
                if (col.Name is null) col = added.FirstOrDefault(c => c.Type is VectorDataViewType);
                if (col.Name is null) continue;
                var prefix = new TransformerChain<ITransformer>(chain.Take(k + 1).ToArray());
                string label = $"{string.Join(" + ", pending)} -> {col.Name}";
                pending.Clear();
                var item = ((VectorDataViewType)col.Type).ItemType;
                if (item == NumberDataViewType.Single)
                {
                    var e = ml.Model.CreatePredictionEngine<ZeroShotImageInput, FloatOut>(prefix, outputSchemaDefinition: FloatOut.For(col.Name));
                    side._own.Add(e); side.Stages.Add((label, x => e.Predict(x).Value.Length));
                }
                else if (item is KeyDataViewType)
                {
                    var e = ml.Model.CreatePredictionEngine<ZeroShotImageInput, KeyOut>(prefix, outputSchemaDefinition: KeyOut.For(col.Name));
                    side._own.Add(e); side.Stages.Add((label, x => e.Predict(x).Value.Length));
                }
                else if (item is TextDataViewType)
                {
                    var e = ml.Model.CreatePredictionEngine<ZeroShotImageInput, TextOut>(prefix, outputSchemaDefinition: TextOut.For(col.Name));
                    side._own.Add(e); side.Stages.Add((label, x => e.Predict(x).Value.Length));
                }
            }
            side.StageMs = side.Stages.Select(_ => new List<double>()).ToArray();
            return side;
        }

        public void AddRound(double[] encoderMs, double[] zeroShotMs)
        {
            _enc.Add(Median(encoderMs)); _zs.Add(Median(zeroShotMs)); _ratio.Add(Median(zeroShotMs) / Median(encoderMs));
            _paired.Add(Median(zeroShotMs.Zip(encoderMs, (z, e) => z / e).ToArray()));
        }

        public JsonObject ToJson(string what)
        {
            var breakdown = new JsonArray();
            for (int s = 0; s < Stages.Count; s++) breakdown.Add(new JsonObject { ["stage"] = Stages[s].Name, ["ms"] = Stats.Of(StageMs[s]) });
            return new JsonObject
            {
                ["what"] = what,
                ["zero_shot_chain"] = new JsonArray(Chain.Select(t => (JsonNode)t).ToArray()),
                ["encoder_only_median_ms"] = Stats.Of(_enc),
                ["zero_shot_median_ms"] = Stats.Of(_zs),
                ["ratio_zero_shot_vs_encoder_only"] = WithTarget(Stats.Of(_ratio), "<= 1.10"),
                ["ratio_zero_shot_vs_encoder_only_paired"] = WithTarget(Stats.Of(_paired), "<= 1.10"),
                ["stages_ms"] = breakdown,
            };
        }

        public void Dispose() { foreach (var d in _own) d.Dispose(); }
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer t)
        => t is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [t];

    private static JsonObject WithTarget(JsonObject stats, string target) { stats["target"] = target; return stats; }

    private static double Median(IReadOnlyList<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); } catch (IOException) { return ""; }
    }

    private sealed class FloatOut
    {
        public float[] Value { get; set; } = [];
        public static SchemaDefinition For(string column) { var d = SchemaDefinition.Create(typeof(FloatOut)); d[0].ColumnName = column; return d; }
    }

    private sealed class KeyOut
    {
        public uint[] Value { get; set; } = [];
        public static SchemaDefinition For(string column) { var d = SchemaDefinition.Create(typeof(KeyOut)); d[0].ColumnName = column; return d; }
    }

    private sealed class TextOut
    {
        public string[] Value { get; set; } = [];
        public static SchemaDefinition For(string column) { var d = SchemaDefinition.Create(typeof(TextOut)); d[0].ColumnName = column; return d; }
    }
}
